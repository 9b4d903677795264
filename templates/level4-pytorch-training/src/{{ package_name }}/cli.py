"""The command line, also run as `python -m <package>` (the form torchrun runs):

train [--config FILE] [--resume RUN] [KEY=VALUE ...]
evaluate RUN_OR_CHECKPOINT
predict RUN_OR_CHECKPOINT INPUT...
export RUN_OR_CHECKPOINT
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
import yaml

from .atomic import check_file_target, write_bytes_atomic, write_json_atomic
from .background import wait_for_pictures
from .checkpoint import (
    export_dir_of,
    find_checkpoint,
    in_checkpoints_folder,
    plan_resume,
)
from .commandline import (
    PROG,
    output_options,
    positive_int,
    progress_enabled,
    run_cli,
)
from .config import Config, memory_for
from .configfile import load
from .data import SEGMENTATION
from .errors import ConfigError
from .evaluate import evaluate_run, format_confusion, load_saved_model
from .export import export_model, onnx_available
from .predict import masks_as_npy, predict, read_inputs
from .train import train

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, evaluate and use a network. "
        "configs/default.yaml lists every setting.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_export(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


def _add_train(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "train",
        parents=[output_options(progress=True)],
        help="train a model and write a run folder",
        description="Train with the defaults, a config file and KEY=VALUE overrides "
        "(e.g. train.lr=3e-4).",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings (e.g. configs/smoke.yaml)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue an interrupted run: its folder, a checkpoint file, or 'latest' "
        "(the run saved most recently)",
    )
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved configuration and exit",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="settings, e.g. data.batch_size=128",
    )
    parser.set_defaults(handler=cmd_train)


def _add_evaluate(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "evaluate",
        parents=[output_options(progress=False)],
        help="report accuracy, loss and confusion matrix of a saved run",
        description="Evaluate a run folder (its best checkpoint), a checkpoint file "
        "or 'latest'.",
    )
    _add_target(parser)
    parser.add_argument("--split", choices=("test", "val", "train"), default="test")
    parser.set_defaults(handler=cmd_evaluate)


def _add_predict(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "predict",
        parents=[output_options(progress=False)],
        help="predict the classes (or masks) of new inputs",
        description="Predict with a saved run on .npy arrays (one example or a batch) "
        "or images.",
    )
    _add_target(parser)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", type=Path)
    parser.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="also write the predictions: FILE.json for classes, FILE.npy for masks",
    )
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="(default: 256)"
    )
    parser.set_defaults(handler=cmd_predict)


def _add_export(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = commands.add_parser(
        "export",
        parents=[output_options(progress=False)],
        help="export a saved model (torch.export, and ONNX if installed)",
        description="Write model.pt2 (torch.export) and, where the onnx packages are "
        "installed, model.onnx; each is checked against the model's outputs.",
    )
    _add_target(parser)
    parser.add_argument(
        "--format",
        choices=("auto", "torch", "onnx", "all"),
        default="auto",
        help="auto (default): torch, and onnx when installed",
    )
    parser.add_argument(
        "--output-dir", type=Path, metavar="DIR", help="(default: RUN/export)"
    )
    parser.set_defaults(handler=cmd_export)


def _add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="RUN_OR_CHECKPOINT")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="for a run folder",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps"
    )
    parser.add_argument(
        "--run-root", default="runs", help="where 'latest' looks (default: runs)"
    )


@memory_for(
    "training",
    "lower data.batch_size or the model's size (model.channels, model.hidden or"
    " model.dim)",
)
def cmd_train(args: argparse.Namespace) -> int:
    config = load(Config, args.config, args.overrides)
    checkpoint = None
    if args.resume:
        if args.config:
            raise ConfigError(
                "--resume continues the run's saved configuration: drop --config "
                "(KEY=VALUE still applies)"
            )
        checkpoint = find_checkpoint(args.resume, config.run_root, which="last")
        config, plan = plan_resume(checkpoint, args.overrides)
        if os.environ.get("RANK", "0") == "0" and not args.print_config:
            log.info("%s", plan)
    if args.print_config:
        print(yaml.safe_dump(config.model_dump(), sort_keys=False), end="")
        return 0
    train(config, resume_from=checkpoint, progress_bar=progress_enabled(args))
    wait_for_pictures()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    saved, evaluation = evaluate_run(
        args.target,
        run_root=args.run_root,
        which=args.checkpoint,
        split=args.split,
        device_spec=args.device,
    )
    print(f"checkpoint: {saved.path} (epoch {saved.state['epoch']})")
    print(f"{args.split} accuracy: {evaluation.accuracy:.4f}")
    print(f"{args.split} loss:     {evaluation.loss:.4f}")
    if saved.task == SEGMENTATION:
        print(f"{args.split} mean IoU: {evaluation.mean_iou:.4f}")
        for name, iou in zip(saved.class_names, evaluation.iou, strict=True):
            print(f"  IoU {name}: {iou:.4f}")
    print(f"examples:      {evaluation.count}")
    print("confusion matrix (rows: true class, columns: predicted class):")
    print(format_confusion(evaluation.confusion, saved.class_names))
    return 0


@memory_for("predicting", "lower --batch-size, or split the inputs into more files")
def cmd_predict(args: argparse.Namespace) -> int:
    checkpoint = find_checkpoint(args.target, args.run_root, which=args.checkpoint)
    if args.output is not None:
        check_file_target(args.output)
        _check_output_is_new(args.output, checkpoint, args.inputs)
    saved = load_saved_model(
        checkpoint,
        run_root=args.run_root,
        which=args.checkpoint,
        device_spec=args.device,
    )
    segmentation = saved.task == SEGMENTATION
    if segmentation and (args.output is None or args.output.suffix != ".npy"):
        raise ConfigError(
            "predict: a segmentation model writes masks: give --output FILE.npy"
        )
    if not segmentation and args.output and args.output.suffix.lower() != ".json":
        raise ConfigError(
            f"--output: a classification model writes JSON: give FILE.json, got"
            f" {args.output}"
        )
    records, masks = [], []
    for path in args.inputs:
        probabilities = predict(
            saved, read_inputs(path, saved.input_shape), args.batch_size
        )
        for index, example in enumerate(probabilities):
            name = f"{path}[{index}]"
            if segmentation:
                mask = example.argmax(dim=0)
                masks.append(mask)
                shares = [
                    f"{label} {float((mask == c).float().mean()):.0%}"
                    for c, label in enumerate(saved.class_names)
                ]
                print(f"{name}\t" + "  ".join(shares))
                continue
            probability, label = example.max(dim=0)
            records.append(
                {
                    "input": name,
                    "class": saved.class_names[int(label)],
                    "probability": round(float(probability), 6),
                }
            )
            print(f"{name}\t{records[-1]['class']}\t{float(probability):.4f}")
    if args.output is not None:
        if segmentation:
            write_bytes_atomic(args.output, masks_as_npy(torch.stack(masks)))
        else:
            write_json_atomic(args.output, records)
    return 0


def _check_output_is_new(output: Path, checkpoint: Path, inputs: list[Path]) -> None:
    """Refuse an --output that would replace a file this command reads, or land among
    a run's checkpoints: the predictions would take the place of what made them."""
    reads = [(checkpoint, "the checkpoint"), *((path, "an input") for path in inputs)]
    for path, what in reads:
        try:
            same = output.resolve() == path.resolve() or os.path.samefile(output, path)
        except OSError:  # one of them does not exist (yet): not the same file
            same = False
        if same:
            raise ConfigError(
                f"--output: {output} would replace {what} ({path}): name another file"
            )
    if in_checkpoints_folder(output):
        raise ConfigError(
            f"--output: {output} is in a run's checkpoints folder: name a file"
            " elsewhere"
        )


def cmd_export(args: argparse.Namespace) -> int:
    saved = load_saved_model(
        args.target, run_root=args.run_root, which=args.checkpoint, device_spec="cpu"
    )
    formats = {
        "auto": ["torch", "onnx"] if onnx_available() else ["torch"],
        "all": ["torch", "onnx"],
    }.get(args.format, [args.format])
    out_dir = args.output_dir or export_dir_of(saved.path)
    for exported in export_model(saved.model, saved.input_shape, out_dir, formats):
        checked = (
            f"outputs match (max difference {exported.max_difference:.1e})"
            if exported.max_difference is not None
            else "not checked: pip install onnxruntime to check it"
        )
        print(f"{exported.path}\t{checked}")
    if "onnx" not in formats:
        log.info("ONNX: pip install onnx onnxscript to export model.onnx too")
    shape = ", ".join(str(size) for size in saved.input_shape)
    print(f"input: float32 tensor of shape (batch, {shape})")
    return 0
