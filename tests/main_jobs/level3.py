"""Level 3: fetch and apply the example series, the smoke render, then export --check;
then the README's "Your own upstream" steps, run literally and in order, on a throwaway
upstream, a first patch of the user's, and the project's own tests after it."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from conftest import run

# The README's stand-ins for the user's upstream, replaced by the throwaway one.
README_URL = "https://github.com/OWNER/APP"
README_REV = "v1.2.0"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Level Three",
    "GIT_AUTHOR_EMAIL": "three@example.org",
    "GIT_COMMITTER_NAME": "Level Three",
    "GIT_COMMITTER_EMAIL": "three@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def check(project: Path, bin_dir: Path, answers: dict) -> None:
    cli = str(bin_dir / answers["package_name"].replace("_", "-"))
    fetched = run([cli, "fetch"], project, timeout=120)
    assert "as pinned" in fetched.stdout
    applied = run([cli, "apply"], project, timeout=120)
    assert "applied 3/3 record-provenance.patch" in applied.stdout
    run([cli, "smoke"], project, timeout=300)
    run([cli, "export", "--check"], project, timeout=120)
    run([cli, "lint"], project, timeout=120)
    blocked_by_an_edit(project, cli)

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
    for frame in metadata["frames"]:
        assert all(math.isfinite(frame[key]) for key in ("min", "max", "mean", "std"))
    for name in summary["files"]:
        first = (smoke / "run-1" / name).read_bytes()
        assert first == (smoke / "run-2" / name).read_bytes(), name
    # The patched behaviour: a bare-number schedule (crashes upstream) and the vignette.
    assert metadata["settings"]["strength_schedule"] == "0.6"
    assert metadata["settings"]["vignette_strength"] > 0
    for name in ("frame_00000.ppm", "frame_00002.ppm"):
        corners, centre = brightness(smoke / "run-1" / name)
        assert corners < 0.5 * centre, (name, corners, centre)

    own_upstream(project, bin_dir, cli)


def blocked_by_an_edit(project: Path, cli: str) -> None:
    """An uncommitted edit in the work tree blocks apply with exit 4 and one line on
    stderr; undone, apply goes ahead, and --quiet leaves stderr empty."""
    readme = project / ".work" / "upstream" / "README.md"
    original = readme.read_bytes()
    readme.write_bytes(original + b"an edit not yet committed\n")
    blocked = run([cli, "apply"], project, check=False, timeout=120)
    assert blocked.returncode == 4, (blocked.returncode, blocked.stderr)
    assert blocked.stderr.count("\n") == 1, blocked.stderr
    assert "apply: " in blocked.stderr, blocked.stderr
    assert "README.md" in blocked.stderr, blocked.stderr
    assert readme.read_bytes().endswith(b"an edit not yet committed\n")
    readme.write_bytes(original)
    quiet = run([cli, "apply", "--quiet"], project, timeout=120)
    assert quiet.stderr == "", quiet.stderr
    assert "applied 3/3" in quiet.stdout


def readme_steps(project: Path) -> list[str]:
    """The command lines of the first console block under "### Your own upstream"."""
    readme = (project / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Your own upstream\n", 1)[1]
    block = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no console block under 'Your own upstream'"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert any(README_URL in line for line in lines), lines
    return lines


def throwaway_upstream(folder: Path) -> Path:
    """A plain git upstream with a licence, a quoted file name and two releases."""
    folder.mkdir()
    env = GIT_IDENTITY
    run(["git", "init", "-q", "-b", "main"], folder, env=env)
    (folder / "LICENSE").write_text("MIT License\n", encoding="utf-8")
    (folder / "app.py").write_text("".join(f"step = {n}\n" for n in range(12)), encoding="utf-8")
    (folder / "notes é.txt").write_text("a note\n", encoding="utf-8")
    run(["git", "add", "-A"], folder, env=env)
    run(["git", "commit", "-q", "-m", "first"], folder, env=env)
    run(["git", "tag", README_REV], folder, env=env)
    (folder / "app.py").write_text("step = 0\n", encoding="utf-8")
    run(["git", "commit", "-q", "-a", "-m", "second"], folder, env=env)
    return folder


def own_upstream(project: Path, bin_dir: Path, cli: str) -> None:
    upstream = throwaway_upstream(project.parent / "their-app")
    env = {**GIT_IDENTITY, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for line in readme_steps(project):
        command = line.replace(README_URL, str(upstream))
        result = run(command, project, env=env, timeout=300)
        if "init --upstream" in command:
            assert "removed patches/render-vignette.patch" in result.stdout
    # The pin is the throwaway upstream's tag; the example content is gone and committed.
    status = json.loads(run([cli, "status", "--json"], project).stdout)
    tagged = run(["git", "rev-parse", README_REV], upstream, env=GIT_IDENTITY).stdout.strip()
    assert status["commit"] == tagged
    assert status["patches"] == []
    assert not (project / "example_upstream").exists()
    assert not (project / "tests" / "test_example.py").exists()
    clean = run(["git", "status", "--porcelain"], project, env=GIT_IDENTITY).stdout
    assert clean == "", clean

    # The user's first patch, on a file whose name git quotes; then the project's tests.
    work = project / ".work" / "upstream"
    (work / "notes é.txt").write_text("a better note\n", encoding="utf-8")
    message = (
        "notes: a better note\n\n"
        "Upstream-Status: Pending\nOrigin: vendor\nLast-Update: 2025-01-31\n"
    )
    run(["git", "commit", "-q", "-a", "-m", message], work, env=GIT_IDENTITY)
    run([cli, "export"], project)
    run([cli, "lint"], project)
    run([cli, "apply"], project)
    run([cli, "export", "--check"], project)
    assert (project / "patches" / "notes-a-better-note.patch").is_file()
    pytest = [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    run(pytest, project, timeout=600)


def brightness(path: Path) -> tuple[float, float]:
    """Mean value of the four 4x4 corner blocks, and of the 8x8 centre, of a 64x64 PPM
    frame (the size smoke/settings.json asks for)."""
    magic, size, maximum, pixels = path.read_bytes().split(b"\n", 3)
    width, height = map(int, size.split())
    assert (magic, width, height, maximum) == (b"P6", 64, 64, b"255"), path
    assert len(pixels) == width * height * 3, path

    def mean(rows: range, columns: range) -> float:
        values = [pixels[(y * width + x) * 3 + c] for y in rows for x in columns for c in range(3)]
        return sum(values) / len(values)

    edges = [(range(4), range(4)), (range(height - 4, height), range(width - 4, width))]
    edges += [(range(4), range(width - 4, width)), (range(height - 4, height), range(4))]
    corners = sum(mean(rows, columns) for rows, columns in edges) / 4
    middle = range(height // 2 - 4, height // 2 + 4), range(width // 2 - 4, width // 2 + 4)
    return corners, mean(*middle)
