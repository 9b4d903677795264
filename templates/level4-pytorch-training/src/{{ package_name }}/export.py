"""Export a trained model for serving without this project's code: a torch.export
program (.pt2), and ONNX (.onnx) when the optional onnx packages are installed.

Each export is checked: its outputs on a random batch must match the model's.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_writer
from .errors import ConfigError, Error

TOLERANCE = 1e-4  # largest absolute difference of outputs that counts as a match


@dataclass
class Exported:
    path: Path
    max_difference: float | None  # None: not checked (no runtime installed)


def onnx_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript"))


def export_model(
    model: nn.Module,
    input_shape: tuple[int, ...],
    out_dir: Path,
    formats: list[str],
) -> list[Exported]:
    """Write `model.pt2` and/or `model.onnx` into `out_dir`, each with a batch size of
    the caller's choosing, and check them against the model in fp32 on the CPU."""
    model = model.float().cpu().eval()
    example = torch.rand(2, *input_shape, generator=torch.Generator().manual_seed(0))
    check = torch.rand(5, *input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(check)
    dynamic = ({0: torch.export.Dim.AUTO},)
    results = []
    if "torch" in formats:
        program = torch.export.export(model, (example,), dynamic_shapes=dynamic)
        path = out_dir / "model.pt2"
        with atomic_writer(path) as file:
            torch.export.save(program, file)
        with torch.no_grad():
            got = torch.export.load(path).module()(check)
        results.append(Exported(path, _difference(got, expected, path)))
    if "onnx" in formats:
        if not onnx_available():
            raise ConfigError(
                "--format onnx: needs the onnx and onnxscript packages "
                "(pip install onnx onnxscript)"
            )
        path = out_dir / "model.onnx"
        with warnings.catch_warnings():
            # The exporter calls pytree APIs that torch itself has deprecated.
            warnings.simplefilter("ignore", FutureWarning)
            onnx_program = torch.onnx.export(
                model, (example,), dynamo=True, dynamic_shapes=dynamic, verbose=False
            )
        if onnx_program is None:
            raise Error("torch.onnx.export returned no program")
        out_dir.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=out_dir, prefix=".model.onnx.", suffix=".tmp"
        )
        os.close(handle)
        try:
            onnx_program.save(temporary)
            os.replace(temporary, path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        results.append(Exported(path, _onnx_difference(path, check, expected)))
    return results


def _onnx_difference(
    path: Path, inputs: torch.Tensor, expected: torch.Tensor
) -> float | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(path), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    (got,) = session.run(None, {name: inputs.numpy()})
    return _difference(torch.from_numpy(got), expected, path)


def _difference(got: torch.Tensor, expected: torch.Tensor, path: Path) -> float:
    difference = float((got - expected).abs().max())
    if not difference <= TOLERANCE:
        raise Error(
            f"{path}: the exported model's outputs differ from the model's by "
            f"{difference:.2e} (more than {TOLERANCE:.0e})"
        )
    return difference
