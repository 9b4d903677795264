"""On-disk response cache: rerunning a suite with unchanged prompts makes no API calls.

One small JSON file per response, named by a hash of provider, base URL, model,
messages, parameters, tools and repeat index. Only successful responses are stored: an
error is retried on the next run. Nothing secret goes in: the key is built from the
request body, never from headers, and answers are redacted before they get here.

A run that writes holds the folder's lock shared while it runs (`open` to `close`);
one that finds no other run there first clears the temporary files that a killed run's
writes left. Two runs at once never clear each other's.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from . import jsonvalue
from .atomic import remove_stale_temporaries, write_text_atomic
from .config import ProviderProfile
from .locking import SharedLock
from .providers.base import ChatRequest, Completion, request_fingerprint

LOCK = ".cache.lock"


class ResponseCache:
    def __init__(
        self, directory: Path, *, read: bool = True, write: bool = True
    ) -> None:
        self.directory = directory
        self.read = read
        self.write = write
        self._lock: SharedLock | None = None

    def open(self) -> None:
        """Before a run's first write: hold the cache's lock for the run and, when no
        other run holds it, clear what killed writes left. Nothing to do unless the
        cache is written."""
        if not self.write or self._lock is not None:
            return
        self._lock = SharedLock(self.directory / LOCK)
        if self._lock.open():
            for folder in self.directory.iterdir():
                if folder.is_dir():
                    remove_stale_temporaries(folder)
            self._lock.share()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @staticmethod
    def key(profile: ProviderProfile, request: ChatRequest) -> str:
        fields: dict[str, object] = {
            "provider": profile.name,
            "type": profile.type,
            "base_url": profile.base_url,
            "model": profile.model,
        }
        if profile.query:  # absent when unused, so older cache entries keep their keys
            fields["query"] = profile.query
        return request_fingerprint(fields | request.fingerprint_fields())

    def _path(self, key: str) -> str:
        # A string, not a Path: joining and opening Paths took a third of a fully
        # cached run's time.
        return os.path.join(self.directory, key[:2], f"{key}.json")

    def get(self, key: str) -> Completion | None:
        if not self.read:
            return None
        try:
            with open(self._path(key), "rb") as entry:
                return Completion.from_dict(jsonvalue.loads(entry.read()))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: treat as a miss and call the API again

    def put(self, key: str, completion: Completion) -> None:
        if self.write:
            text = json.dumps(completion.to_dict(), ensure_ascii=False)
            # No fsync: an entry lost in a power cut is a miss, and get() reads a
            # damaged one as a miss too; the flush would cost milliseconds per call.
            write_text_atomic(self._path(key), text, durable=False)

    def clear(self) -> int:
        """Delete every cached response; returns how many there were."""
        if not self.directory.is_dir():
            return 0
        count = sum(1 for _ in self.directory.rglob("*.json"))
        shutil.rmtree(self.directory)
        return count
