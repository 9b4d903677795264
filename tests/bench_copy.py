"""How much a `copier copy` of each level costs next to Copier's floor.

The floor is a template of one question and one file, in a git repository of its own,
copied the same way (`copier copy --defaults --vcs-ref HEAD`, a whole process each): what
any template costs. Pairs run interleaved, so load on the machine hits both sides alike;
the figure is the median ratio of CPU time (user + system of the process and its
children, which is what the clone, the rendering and the file writes cost) and of wall
time, over the pairs.

    .venv/bin/python tests/bench_copy.py [--pairs 5] [--level 4 ...]

It copies this repository's committed HEAD: commit first to measure a change.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import levels  # noqa: E402


def make_floor(where: Path) -> Path:
    template = where / "floor"
    template.mkdir()
    (template / "copier.yml").write_text(
        "project_name:\n  type: str\n  default: floor\n", encoding="utf-8"
    )
    (template / "README.md.jinja").write_text("# {{ project_name }}\n", encoding="utf-8")
    for command in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "floor"],
    ):
        subprocess.run(command, cwd=template, check=True)
    return template


def timed_copy(source: Path, destination: Path, data: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole `copier copy` process."""
    copier = shutil.which("copier") or str(Path(sys.executable).with_name("copier"))
    command = [copier, "copy", "--quiet", "--defaults", "--vcs-ref", "HEAD", "--trust"]
    for name, value in data.items():
        command += ["--data", f"{name}={value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([*command, str(source), str(destination)], check=True, env=os.environ)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--level", type=int, action="append", choices=sorted(levels.LEVELS))
    args = parser.parse_args()
    chosen = args.level or sorted(levels.LEVELS)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        floor = make_floor(scratch)
        print(f"copier copy, {args.pairs} interleaved pairs per level, medians (range)")
        print(f"{'level':<8}{'CPU ratio':>22}{'wall ratio':>22}{'level CPU s':>14}")
        for level in chosen:
            cpu_ratios, wall_ratios, cpus = [], [], []
            for pair in range(args.pairs):
                floor_wall, floor_cpu = timed_copy(floor, scratch / f"f{level}-{pair}", {})
                wall, cpu = timed_copy(ROOT, scratch / f"l{level}-{pair}", {"level": str(level)})
                cpu_ratios.append(cpu / floor_cpu)
                wall_ratios.append(wall / floor_wall)
                cpus.append(cpu)
            print(
                f"{level:<8}{_spread(cpu_ratios):>22}{_spread(wall_ratios):>22}"
                f"{statistics.median(cpus):>14.2f}"
            )
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    raise SystemExit(main())
