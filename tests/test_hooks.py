"""tools/check_update_leftovers.py (templates/_shared/common/tools/): the pre-commit check
every generated project runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

HOOK = REPO / "templates" / "_shared" / "common" / "tools" / "check_update_leftovers.py"
OURS, SEPARATOR, THEIRS = "<" * 7, "=" * 7, ">" * 7


def check(tmp_path: Path, files: dict[str, bytes]) -> subprocess.CompletedProcess[str]:
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return subprocess.run(
        [sys.executable, str(HOOK), *files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_conflict_block_is_refused_with_its_lines(tmp_path: Path) -> None:
    conflict = f"a\n{OURS} before updating\nmine\n{SEPARATOR}\ntheirs\n{THEIRS} after updating\n"
    result = check(tmp_path, {"clean.py": b"x = 1\n", "conflict.txt": conflict.encode()})
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"conflict.txt:{n}: conflict marker from copier update; resolve the conflict"
        for n in (2, 4, 6)
    ]


def test_rejected_hunk_file_is_refused(tmp_path: Path) -> None:
    result = check(tmp_path, {"pyproject.toml.rej": b"@@ -1 +1 @@\n"})
    assert result.returncode == 1
    assert result.stdout.startswith("pyproject.toml.rej: rejected hunk")


@pytest.mark.parametrize(
    "content",
    [
        b"Title\n=======\n\ntext\n",  # a Markdown underline is not a conflict
        f"{OURS} only an opening marker, quoted in docs\n".encode(),
        b"\x89PNG\r\n\x1a\n\x00\xff" + f"\n{OURS} x\n{THEIRS} y\n".encode(),  # binary
    ],
)
def test_look_alikes_pass(tmp_path: Path, content: bytes) -> None:
    result = check(tmp_path, {"file": content})
    assert result.returncode == 0, result.stdout


def test_hook_source_does_not_flag_itself(tmp_path: Path) -> None:
    result = check(tmp_path, {"hook.py": HOOK.read_bytes()})
    assert result.returncode == 0
