"""JSON from outside the harness (a model's reply, a server's body, your files) read
into values."""

from __future__ import annotations

import json
import re
from typing import Any

# An escape of half a surrogate pair: json.loads takes \ud800 with no other half.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def loads(text: str | bytes) -> Any:
    """json.loads, where nesting too deep for Python's parser (a model that answers
    with 100,000 open brackets) is a ValueError like any other text that is no JSON,
    not a RecursionError that would end the whole run; and so is a string that holds
    half of a surrogate pair, which no UTF-8 file (results.json, the cache, the
    recordings) can hold."""
    try:
        if isinstance(text, bytes):
            # Decoded here, strictly: json.loads decodes bytes with "surrogatepass",
            # which lets the raw bytes of half a pair through.
            text = text.decode(json.detect_encoding(text))
        value = json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply to read") from None
    if _SURROGATE_ESCAPE.search(text):  # most JSON has none: nothing then to walk
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"a string holds {exc.object[exc.start : exc.end]!r}, half of a"
                " surrogate pair, which is not text"
            ) from None
    return value
