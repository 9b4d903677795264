"""The command line, also run as `python -m <package>`.

check   the gradient checks and the BitNet-versus-float training comparison, offline
bench   BitLinear against nn.Linear and transformers, bytes and SQNR, as JSON
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from . import gradchecks
from .atomic import write_json_atomic
from .bench import DEFAULT_SHAPES, LABELS, run_benchmark
from .commandline import (
    PROG,
    non_negative_int,
    output_options,
    positive_int,
    progress_enabled,
    run_cli,
)
from .errors import EXIT_OK, Error
from .model import ModelConfig
from .runs import create_run_dir, prepare_run_root, write_metrics
from .runtime import environment, resolve_device, seed_everything
from .train import TrainConfig, compare, one_thread

log = logging.getLogger(__name__)

# BitNet must reach this fraction of its full-precision twin's accuracy.
MIN_ACCURACY_RATIO = 0.9
# About an hour per model on two CPU cores, 500 times the default: a larger number is
# a typo, and would run for days.
MAX_STEPS = 100_000


def shape(text: str) -> tuple[int, int, int]:
    """An argparse type: TOKENSxINxOUT, e.g. 32x2048x2048."""
    match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text.strip())
    if match is None or 0 in (sizes := tuple(int(part) for part in match.groups())):
        raise argparse.ArgumentTypeError(
            "expected TOKENSxINxOUT with whole numbers of 1 or more, "
            f"e.g. 32x2048x2048, got {text!r}"
        )
    return sizes[0], sizes[1], sizes[2]


def step_count(text: str) -> int:
    """An argparse type: 1 to MAX_STEPS training steps."""
    value = positive_int(text)
    if value > MAX_STEPS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_STEPS}, got {value}")
    return value


def thread_count(text: str) -> int:
    """An argparse type: 1 to this machine's CPU count (torch crashes far past it)."""
    value = positive_int(text)
    cpus = os.cpu_count() or 1
    if value > cpus:
        raise argparse.ArgumentTypeError(
            f"must be at most {cpus}, the CPUs of this machine, got {value}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="BitNet b1.58's BitLinear: gradient checks, training, benchmark.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_check(commands)
    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv)


def _add_check(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        parents=[output_options(progress=True)],
        help="gradient checks and a BitNet-vs-float training comparison (offline, CPU)",
        description="Run every gradient check, then train a tiny BitNet transformer "
        "and its full-precision twin on a copy task with the same budget, and compare "
        "them.",
    )
    check.add_argument(
        "--steps",
        type=step_count,
        default=TrainConfig.steps,
        help=f"training steps per model (at most {MAX_STEPS})",
    )
    check.add_argument("--seed", type=non_negative_int, default=0)
    check.add_argument(
        "--run-root",
        type=Path,
        default=Path("runs"),
        help="where the report goes (default: runs)",
    )
    check.set_defaults(handler=cmd_check)


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench",
        parents=[output_options(progress=False)],
        help="BitLinear against nn.Linear and transformers, side by side, as JSON",
        description="Time, in turn, the eval forward of nn.Linear, BitLinear and the "
        "integer path, and forward+backward of nn.Linear, BitLinear and transformers' "
        "AutoBitLinear (when installed); report the ratios, packed bytes and SQNR.",
    )
    bench.add_argument(
        "--shape",
        dest="shapes",
        type=shape,
        action="append",
        metavar="TOKENSxINxOUT",
        help="a shape to time (repeatable; default 1x2048x2048 and 32x2048x2048)",
    )
    bench.add_argument("--repeats", type=positive_int, default=31)
    bench.add_argument("--warmup", type=non_negative_int, default=3)
    bench.add_argument(
        "--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps"
    )
    bench.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="CPU threads for torch (default 1: steadiest, and what the README's "
        "figures use)",
    )
    bench.add_argument(
        "--skip-transformers",
        action="store_true",
        help="leave out transformers' AutoBitLinear even where it is installed "
        "(its first call compiles for a while)",
    )
    bench.add_argument(
        "--compile",
        action="store_true",
        help="also time BitLinear's forward+backward under torch.compile (its "
        "first call compiles for tens of seconds; on a CPU it needs a C++ compiler)",
    )
    bench.add_argument("--run-root", type=Path, default=Path("runs"))
    bench.set_defaults(handler=cmd_bench)


def cmd_check(args: argparse.Namespace) -> int:
    prepare_run_root(args.run_root)  # before the checks and the training, not after
    seed_everything(args.seed)
    log.info("running the gradient checks (float64)")
    with one_thread():
        results = gradchecks.run_all(args.seed)
        ste = gradchecks.ste_checks(args.seed)
    print(
        "gradient checks (float64): gradcheck at PyTorch's default tolerances, "
        "straight-through Jacobians exact"
    )
    print(f"  {'part':<44} {'check':<15} result")
    for result in results:
        got = "pass" if result.passed else "FAIL"
        print(f"  {result.name:<44} {result.check:<15} {got}")
    for name, passed in ste.items():
        print(f"  {name:<60} {'pass' if passed else 'FAIL'}")

    log.info("training BitNet and its float twin, %d steps each", args.steps)
    bitnet, full = compare(
        ModelConfig(),
        TrainConfig(steps=args.steps, seed=args.seed),
        progress=progress_enabled(args),
    )
    ratio = bitnet.accuracy / full.accuracy if full.accuracy > 0 else 0.0
    print()
    print(
        f"training comparison: copy task, {args.steps} steps each, "
        "same seed, data and optimiser"
    )
    print(
        f"  {'model':<8} {'first loss':>10} {'final loss':>10} "
        f"{'accuracy':>9} {'seconds':>8}"
    )
    for trained in (bitnet, full):
        print(
            f"  {trained.name:<8} {trained.first_loss:>10.4f} "
            f"{trained.final_loss:>10.4f} {trained.accuracy:>9.4f} "
            f"{trained.seconds:>8.1f}"
        )
    print(f"  BitNet / float accuracy: {ratio:.3f} (required: {MIN_ACCURACY_RATIO})")

    checks_ok = all(result.passed for result in results) and all(ste.values())
    training_ok = ratio >= MIN_ACCURACY_RATIO
    run_dir = create_run_dir(args.run_root, "check")
    write_metrics(
        run_dir,
        {
            "gradient_checks": [asdict(result) for result in results],
            "ste_checks": ste,
            "training": {
                "bitnet": asdict(bitnet),
                "float": asdict(full),
                "accuracy_ratio": ratio,
            },
            "passed": checks_ok and training_ok,
            "environment": environment(),
        },
    )
    print(f"report: {run_dir / 'metrics.json'}")
    failures = []
    if not checks_ok:
        failures.append("a gradient check failed")
    if not training_ok:
        failures.append(
            f"BitNet reached {ratio:.3f} of the float accuracy "
            f"(required: {MIN_ACCURACY_RATIO})"
        )
    if failures:
        raise Error("; ".join(failures))
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    prepare_run_root(args.run_root)  # before the timings, not after
    device = resolve_device(args.device)
    shapes = args.shapes or list(DEFAULT_SHAPES)
    torch.set_num_threads(args.threads)
    report = run_benchmark(
        shapes,
        device,
        args.repeats,
        args.warmup,
        with_transformers=not args.skip_transformers,
        with_compile=args.compile,
    )
    run_dir = create_run_dir(args.run_root, "bench")
    path = run_dir / "bench.json"
    write_json_atomic(path, report)
    environment = report["environment"]
    print(
        f"device {report['device']}, torch {environment['torch']}, "
        f"{environment['threads']} thread(s); median ms of {args.repeats} calls, "
        "each candidate timed in turn"
    )
    for entry in report["shapes"]:
        size = entry["shape"]
        name = f"{size['tokens']}x{size['in_features']}x{size['out_features']}"
        print(f"  {name:<48} {'ms':>8} {'vs nn.Linear':>13} {'vs transformers':>16}")
        for kind, label in (("eval_forward", "eval"), ("forward_backward", "fwd+bwd")):
            versus_linear = entry["ratios"][f"{kind}_vs_linear"]
            versus_hf = entry["ratios"].get(f"{kind}_vs_transformers", {})
            for candidate, timing in entry[kind].items():
                title = LABELS[candidate]
                if candidate == "integer":
                    title += f" ({entry['integer_kernel']})"
                hf_ratio = (
                    f"{versus_hf[candidate]:>15.2f}x" if candidate in versus_hf else ""
                )
                print(
                    f"    {label:<8} {title:<38} {timing['median_ms']:>8.3f} "
                    f"{versus_linear[candidate]:>12.2f}x {hf_ratio}".rstrip()
                )
        if entry["transformers"] != "compared":
            missing = entry["transformers"]
            # Asked for and broken is worth a warning; absent or skipped is not.
            note = log.warning if "failed" in missing else log.info
            note("%s: no transformers row: %s", name, missing)
        if entry["compiled"].startswith("torch.compile failed"):
            log.warning("%s: no torch.compile row: %s", name, entry["compiled"])
        print(
            f"    packed weight {entry['bytes']['packed_weight']:,} bytes, "
            f"{entry['bytes']['bf16_over_packed']:.1f}x smaller than bf16"
        )
    sqnr = report["sqnr"]
    print(
        f"  SQNR: ternary weights {sqnr['ternary_weight_db']:.2f} dB "
        f"({sqnr['ternary_zero_fraction']:.1%} zeros), "
        f"binary {sqnr['binary_weight_db']:.2f} dB, "
        f"int8 activations {sqnr['int8_per_token_d1024_db']:.1f} dB (d=1024)"
    )
    print(f"report: {path}")
    return EXIT_OK
