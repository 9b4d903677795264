"""Settings: the user's file over the defaults next to the package."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULTS = Path(__file__).resolve().parent.parent / "defaults.json"


def load_settings(path=None):
    """The defaults, updated by the keys of the file at `path` (others ignored)."""
    settings = json.loads(DEFAULTS.read_text(encoding="utf-8"))
    if path is not None:
        settings.update(json.loads(Path(path).read_text(encoding="utf-8")))
    return settings
