"""On-disk response cache: rerunning a suite with unchanged prompts makes no API calls.

One small JSON file per response, named by a hash of provider, base URL, model,
messages, parameters and repeat index. Only successful responses are stored: an error
is retried on the next run. Nothing secret goes in: the key is built from the request
body, never from headers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .config import ProviderProfile
from .providers import ChatRequest, Completion, request_fingerprint


class ResponseCache:
    def __init__(
        self, directory: Path, *, read: bool = True, write: bool = True
    ) -> None:
        self.directory = directory
        self.read = read
        self.write = write
        self._made_dirs: set[Path] = set()

    @staticmethod
    def key(profile: ProviderProfile, request: ChatRequest) -> str:
        return request_fingerprint(
            {
                "provider": profile.name,
                "type": profile.type,
                "base_url": profile.base_url,
                "model": profile.model,
                "messages": request.messages,
                "params": request.params,
                "repeat": request.repeat,
            }
        )

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Completion | None:
        if not self.read:
            return None
        try:
            return Completion.from_dict(json.loads(self._path(key).read_bytes()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: treat as a miss and call the API again

    def put(self, key: str, completion: Completion) -> None:
        if not self.write:
            return
        path = self._path(key)
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)
        # Write then rename, so a run killed mid-write never leaves half a file behind.
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(completion.to_dict(), stream, ensure_ascii=False)
        os.replace(temporary, path)

    def clear(self) -> int:
        """Delete every cached response; returns how many there were."""
        if not self.directory.is_dir():
            return 0
        count = sum(1 for _ in self.directory.rglob("*.json"))
        shutil.rmtree(self.directory)
        return count
