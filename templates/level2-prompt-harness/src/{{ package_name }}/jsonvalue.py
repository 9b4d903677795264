"""JSON from outside the harness (a model's reply, a server's body, your files) read
into values."""

from __future__ import annotations

import json
from typing import Any


def loads(text: str | bytes) -> Any:
    """json.loads, where nesting too deep for Python's parser (a model that answers
    with 100,000 open brackets) is a ValueError like any other text that is no JSON,
    not a RecursionError that would end the whole run."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
