"""Level 3: fetch and apply the example series, the smoke render, then export --check."""

from __future__ import annotations

import json
import math
from pathlib import Path

from conftest import run


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    fetched = run([cli, "fetch"], project, timeout=120)
    assert "as pinned" in fetched.stdout
    applied = run([cli, "apply"], project, timeout=120)
    assert "applied 3/3 record-provenance.patch" in applied.stdout
    run([cli, "smoke"], project, timeout=300)
    run([cli, "export", "--check"], project, timeout=120)
    run([cli, "lint"], project, timeout=120)

    smoke = project / ".work" / "smoke"
    summary = json.loads((smoke / "smoke.json").read_text(encoding="utf-8"))
    status = json.loads(run([cli, "status", "--json"], project).stdout)
    # The run records the fingerprint of the series and the upstream commit it ran on.
    metadata = json.loads((smoke / "run-1" / "run.json").read_text(encoding="utf-8"))
    assert metadata["provenance"]["series_fingerprint"] == status["fingerprint"]
    assert metadata["provenance"]["upstream_commit"] == status["commit"]
    assert summary["provenance"]["series_fingerprint"] == status["fingerprint"]
    # Three finite frames, bit-identical across the two runs.
    assert len(metadata["frames"]) == 3
    assert all(math.isfinite(frame["mean"]) for frame in metadata["frames"])
    for name in summary["files"]:
        first = (smoke / "run-1" / name).read_bytes()
        assert first == (smoke / "run-2" / name).read_bytes(), name
    # The patched behaviour: a bare-number schedule (crashes upstream) and the vignette.
    assert metadata["settings"]["strength_schedule"] == "0.6"
    assert metadata["settings"]["vignette_strength"] > 0
    corners, centre = brightness(smoke / "run-1" / "frame_00000.ppm")
    assert corners < 0.5 * centre, (corners, centre)


def brightness(path: Path) -> tuple[float, float]:
    """Mean value of the four 4x4 corner blocks, and of the 8x8 centre, of a PPM frame."""
    _, size, _, pixels = path.read_bytes().split(b"\n", 3)
    width, height = map(int, size.split())

    def mean(rows: range, columns: range) -> float:
        values = [pixels[(y * width + x) * 3 + c] for y in rows for x in columns for c in range(3)]
        return sum(values) / len(values)

    edges = [(range(4), range(4)), (range(height - 4, height), range(width - 4, width))]
    edges += [(range(4), range(width - 4, width)), (range(height - 4, height), range(4))]
    corners = sum(mean(rows, columns) for rows, columns in edges) / 4
    middle = range(height // 2 - 4, height // 2 + 4), range(width // 2 - 4, width // 2 + 4)
    return corners, mean(*middle)
