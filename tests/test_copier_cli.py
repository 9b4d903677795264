"""The commands in the README, as a user types them: plain `copier`, no `--trust`."""

from __future__ import annotations

from pathlib import Path

from conftest import run, tool


def test_plain_copy_renders_without_trust(copier_template: Path, tmp_path: Path) -> None:
    result = run(
        [tool("copier"), "copy", "--defaults", "-d", "level=1", str(copier_template), "myproj"],
        tmp_path,
    )
    project = tmp_path / "myproj"
    assert (project / "pyproject.toml").is_file()
    assert (project / ".copier-answers.yml").is_file()
    # The after-copy message tells the next commands, git first: update needs a repository.
    assert "git init" in result.stdout + result.stderr
    assert "uv run pytest" in result.stdout + result.stderr


def test_bad_answer_on_the_command_line_ends_with_the_validator_message(
    copier_template: Path, tmp_path: Path
) -> None:
    result = run(
        [
            tool("copier"),
            "copy",
            "--defaults",
            "-d",
            "level=1",
            "-d",
            "package_name=json",
            str(copier_template),
            "myproj",
        ],
        tmp_path,
        check=False,
    )
    assert result.returncode != 0
    # Copier prints its own traceback for a refused --data answer (at the interactive
    # prompt it shows only the message); the message is what the user reads last.
    last_line = result.stderr.strip().splitlines()[-1]
    assert "'json' is a standard-library module" in last_line
    assert "choose another name" in last_line
    assert not (tmp_path / "myproj" / "pyproject.toml").exists()
