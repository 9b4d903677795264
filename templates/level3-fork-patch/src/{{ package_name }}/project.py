"""The fork project on disk: `upstream.toml`, `patches/series`, the patch files, `overlay/`.

Paths are found from the project root, the nearest folder at or above the current one
that holds `upstream.toml`. The work repository (`.work/upstream`) and everything else
the tooling builds live under `.work/`, which git ignores.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_text_atomic
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PIN_FILE = "upstream.toml"
SERIES = "series"
ALLOW_REPLACE = "ALLOW_REPLACE"
HEX40 = re.compile(r"^[0-9a-f]{40}$")
BUNDLED = "bundled:"


@dataclass(frozen=True)
class Pin:
    """Where upstream lives and exactly which commit the series applies to."""

    url: str
    commit: str
    tree: str
    license: str


@dataclass(frozen=True)
class SmokeSpec:
    """How to run the patched application's smoke render (upstream.toml's [smoke])."""

    command: tuple[str, ...]
    metadata: str


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def pin_file(self) -> Path:
        return self.root / PIN_FILE

    @property
    def patches_dir(self) -> Path:
        return self.root / "patches"

    @property
    def series_file(self) -> Path:
        return self.patches_dir / SERIES

    @property
    def overlay_dir(self) -> Path:
        return self.root / "overlay"

    @property
    def state_dir(self) -> Path:
        return self.root / ".work"

    @property
    def work_tree(self) -> Path:
        return self.state_dir / "upstream"

    def load_pin(self) -> Pin:
        return read_pin(self.pin_file)

    def load_smoke(self) -> SmokeSpec:
        data = _read_toml(self.pin_file)
        smoke = data.get("smoke")
        if not isinstance(smoke, dict):
            raise ConfigError(f"{PIN_FILE}: no [smoke] table: say how to run the patched app")
        command = smoke.get("command")
        if not (
            isinstance(command, list)
            and command
            and all(isinstance(part, str) for part in command)
        ):
            raise ConfigError(f"{PIN_FILE}: [smoke] command must be a list of strings")
        metadata = smoke.get("metadata", "run.json")
        if not isinstance(metadata, str) or not metadata:
            raise ConfigError(f"{PIN_FILE}: [smoke] metadata must be a file name")
        return SmokeSpec(tuple(command), metadata)

    def upstream_url(self, pin: Pin) -> str:
        """The URL git fetches from; a bundled example is built under `.work/` first."""
        if pin.url.startswith(BUNDLED):
            return str(self.bundled_repository(pin))
        return pin.url

    def bundled_source(self, pin: Pin) -> Path:
        return self.root / pin.url.removeprefix(BUNDLED)

    def bundled_repository(self, pin: Pin) -> Path:
        name = Path(pin.url.removeprefix(BUNDLED)).name or "upstream"
        return self.state_dir / "bundled" / f"{name}.git"


def find_project(start: Path) -> Project:
    """The project whose root is `start` or the nearest folder above it with upstream.toml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PIN_FILE).is_file():
            return Project(folder)
    raise ConfigError(f"no {PIN_FILE} in {start} or above: run this inside a fork project")


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def read_pin(path: Path) -> Pin:
    data = _read_toml(path)
    table = data.get("upstream")
    if not isinstance(table, dict):
        raise ConfigError(f"{path.name}: no [upstream] table")
    values: dict[str, str] = {}
    for key in ("url", "commit", "tree", "license"):
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path.name}: [upstream] {key} is missing or empty")
        values[key] = value.strip()
    for key in ("commit", "tree"):
        if not HEX40.match(values[key]):
            raise ConfigError(
                f"{path.name}: [upstream] {key} = {values[key]!r}: expected 40 lower-case hex digits"
            )
    unknown = sorted(set(table) - {"url", "commit", "tree", "license"})
    if unknown:
        raise ConfigError(f"{path.name}: [upstream] unknown key(s): {', '.join(unknown)}")
    return Pin(**values)


def write_pin(path: Path, **fields: str) -> None:
    """Change keys of [upstream] in place, keeping every comment and other table."""
    text = path.read_text(encoding="utf-8")
    for key, value in fields.items():
        quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        pattern = re.compile(rf'^{key}\s*=\s*"[^"\n]*"[ \t]*$', re.MULTILINE)
        if not pattern.search(text):
            raise ConfigError(f"{path.name}: no line `{key} = \"...\"` to update")
        text = pattern.sub(lambda _match, k=key, q=quoted: f"{k} = {q}", text, count=1)
    write_text_atomic(path, text)
    read_pin(path)


def read_series(project: Project) -> list[str]:
    """The patch names of `patches/series`, in order; blank lines are skipped."""
    try:
        text = project.series_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{project.series_file}: not found (an empty file means no patches)")
    return [line.strip() for line in text.splitlines() if line.strip()]


def write_series(project: Project, names: list[str]) -> None:
    write_text_atomic(project.series_file, "".join(f"{name}\n" for name in names))


def series_patches(project: Project) -> list[tuple[str, bytes]]:
    """(name, bytes) of every patch in series order; a missing file is an error."""
    patches = []
    for position, name in enumerate(read_series(project), start=1):
        path = project.patches_dir / name
        try:
            patches.append((name, path.read_bytes()))
        except FileNotFoundError:
            raise ConfigError(
                f"patches/series line {position}: {name}: no such file in patches/"
            ) from None
    return patches


def fingerprint(patches: list[tuple[str, bytes]]) -> str:
    """16 hex digits over each name and its bytes (CRLF read as LF), in series order."""
    digest = hashlib.sha256()
    for name, data in patches:
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(data.replace(b"\r\n", b"\n"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]
