"""Refuse to commit what an unfinished `copier update` leaves behind.

`copier update` writes conflicts inline as <<<<<<< / ======= / >>>>>>> blocks (or, with
`--conflict rej`, as `*.rej` files beside the originals). Committing either buries a
half-merged template change in history. Run by pre-commit with the staged file names:

    python tools/check_update_leftovers.py FILE...

Exit status 1 and one line per finding when anything is left over; 0 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Built, not written out, so this file never trips its own check.
OURS = "<" * 7 + " "
SEPARATOR = "=" * 7
THEIRS = ">" * 7 + " "


def leftover_markers(path: Path) -> list[int]:
    """Line numbers of conflict markers, if the file holds a whole conflict block."""
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []  # unreadable or binary: Copier writes no markers into those
    opened = [n for n, line in enumerate(lines, 1) if line.startswith(OURS)]
    closed = [n for n, line in enumerate(lines, 1) if line.startswith(THEIRS)]
    separators = [n for n, line in enumerate(lines, 1) if line.rstrip() == SEPARATOR]
    # A lone "=======" is a Markdown underline; only an open + close pair is a conflict.
    if opened and closed:
        return sorted(opened + separators + closed)
    return []


def main(argv: list[str]) -> int:
    problems = []
    for name in argv:
        path = Path(name)
        if path.suffix == ".rej":
            problems.append(
                f"{name}: rejected hunk from copier update; apply it by hand, "
                "then delete the file"
            )
            continue
        for line_number in leftover_markers(path):
            problems.append(
                f"{name}:{line_number}: conflict marker from copier update; "
                "resolve the conflict"
            )
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
