"""How much a `copier copy` of each level costs next to Copier's floor.

Two floors, each a template of one question in a git repository of its own, copied the
same way (`copier copy --defaults --vcs-ref HEAD`, a whole process each):

- `1 file`: one file, what any template costs;
- `same files`: the level's own rendered files, as plain files with no Jinja, what
  Copier costs to write that many files (it runs git once per file it writes, among
  other things), so the ratio to it is what this template adds: questions, Jinja, the
  larger repository to clone.

Runs are interleaved, so load on the machine hits every side alike; the figures are
median ratios of CPU time (user + system of the process and its children: the clone,
the rendering and the file writes) and of wall time. The two floors together give
Copier's own cost per file written, and from it the most files any template could
write within 1.3 times the one-file floor.

    .venv/bin/python tests/bench_copy.py [--pairs 5] [--level 4 ...]

It copies this repository's committed HEAD: commit first to measure a change. The copy
is made from a fresh clone of it, packed as one fetched from GitHub is, so the loose
objects of a working repository do not weigh on the figures (they made level 4 1.97x
the same-files floor, against 1.33x after `git gc`).
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


def make_floor(where: Path, files_from: Path | None = None) -> Path:
    template = where / ("floor" if files_from is None else f"floor-{files_from.name}")
    if files_from is None:
        template.mkdir()
    else:
        shutil.copytree(files_from, template, ignore=shutil.ignore_patterns(".git*"))
        (template / ".copier-answers.yml").unlink()
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
        template = scratch / "template"
        subprocess.run(
            ["git", "clone", "--quiet", "--no-local", str(ROOT), str(template)], check=True
        )
        print(f"copier copy, {args.pairs} interleaved runs per level, medians (range)")
        print(
            f"{'level':<6}{'files':>6}{'CPU s':>7}{'CPU vs 1 file':>22}"
            f"{'CPU vs same files':>22}{'wall vs same files':>22}"
            f"{'Copier ms/file':>16}{'files in 1.3x':>15}"
        )
        for level in chosen:
            data = {"level": str(level)}
            rendered = scratch / f"rendered{level}"
            timed_copy(template, rendered, data)
            count = sum(1 for p in rendered.rglob("*") if p.is_file())
            same_files = make_floor(scratch, rendered)
            vs_one, vs_same, wall_vs_same, cpus, per_file = [], [], [], [], []
            for run in range(args.pairs):
                _, one_cpu = timed_copy(floor, scratch / f"f{level}-{run}", {})
                same_wall, same_cpu = timed_copy(same_files, scratch / f"s{level}-{run}", {})
                wall, cpu = timed_copy(template, scratch / f"l{level}-{run}", data)
                vs_one.append(cpu / one_cpu)
                vs_same.append(cpu / same_cpu)
                wall_vs_same.append(wall / same_wall)
                cpus.append(cpu)
                # The same-files floor writes `count` files where the one-file floor writes
                # one (plus the answers file each), with the same single question.
                per_file.append((same_cpu - one_cpu) / (count - 1))
            copier_per_file = statistics.median(per_file)
            one_file_cpu = statistics.median(cpus) / statistics.median(vs_one)
            within = 1 + int(0.3 * one_file_cpu / copier_per_file) if copier_per_file > 0 else 0
            print(
                f"{level:<6}{count:>6}{statistics.median(cpus):>7.2f}{_spread(vs_one):>22}"
                f"{_spread(vs_same):>22}{_spread(wall_vs_same):>22}"
                f"{copier_per_file * 1000:>16.1f}{within:>15}"
            )
    return 0


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    raise SystemExit(main())
