"""Recorded responses (--record) and the provider that replays them offline."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonvalue
from ..atomic import remove_stale_temporaries, write_text_atomic
from ..config import ProviderProfile, recordings_file_name
from ..locking import locked
from .base import ChatRequest, Completion, ProviderError, request_fingerprint

log = logging.getLogger(__name__)

# In the recordings folder, so that two --record runs at once take turns to save.
LOCK = ".recordings.lock"


@dataclass
class _RecordingFile:
    entries: dict[str, Any]
    used: set[str] = field(default_factory=set)
    changed: bool = False
    # What this run changed, applied at save time to the file as it is then.
    written: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)


class Recordings:
    """Recorded responses: one JSON file per provider profile in recordings/, sorted so
    that re-recording gives clean diffs.

    Entries are keyed by profile name, model, messages, parameters, tools and repeat
    index. They hold the request (so a reviewer can read what was asked), the suite
    that asked, and the response; never headers or keys.

    Saving merges: under the folder's lock, this run's new and dropped entries are
    applied to each file as it is on disk then, so two runs recording at once keep
    both runs' recordings.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, _RecordingFile] = {}

    @staticmethod
    def key(profile: ProviderProfile, request: ChatRequest) -> str:
        return request_fingerprint(
            {"provider": profile.name, "model": profile.model}
            | request.fingerprint_fields()
        )

    def path(self, provider_name: str) -> Path:
        return self.directory / recordings_file_name(provider_name)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            entries = jsonvalue.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProviderError(f"{path}: unreadable recordings ({exc})") from None
        if not isinstance(entries, dict):
            raise ProviderError(f"{path}: unreadable recordings (not a mapping)")
        return entries

    def _file(self, provider_name: str) -> _RecordingFile:
        if provider_name not in self._files:
            entries = self._read(self.path(provider_name))
            self._files[provider_name] = _RecordingFile(entries)
        return self._files[provider_name]

    def get(self, profile: ProviderProfile, request: ChatRequest) -> Completion | None:
        recording = self._file(profile.name)
        key = self.key(profile, request)
        entry = recording.entries.get(key)
        if not entry:
            return None
        recording.used.add(key)
        try:
            return Completion.from_dict(entry["response"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(
                f"{self.path(profile.name)}: recording {key} is damaged"
                f" ({type(exc).__name__}: {exc}); record it again"
            ) from None

    def put(
        self,
        profile: ProviderProfile,
        request: ChatRequest,
        completion: Completion,
        suite: str = "",
    ) -> None:
        recording = self._file(profile.name)
        key = self.key(profile, request)
        entry: dict[str, Any] = {
            "model": profile.model,
            "messages": request.messages,
            "params": request.params,
            "repeat": request.repeat,
            "response": completion.to_dict(),
        }
        if request.tools:
            entry["tools"] = request.tools
        if suite:
            entry["suite"] = suite
        recording.entries[key] = entry
        recording.used.add(key)
        recording.written.add(key)
        recording.dropped.discard(key)
        recording.changed = True

    @staticmethod
    def embedding_key(profile: ProviderProfile, texts: list[str]) -> str:
        model = profile.embedding_model or profile.model
        return request_fingerprint(
            {"provider": profile.name, "embed": model, "input": texts}
        )

    def get_embeddings(
        self, profile: ProviderProfile, texts: list[str]
    ) -> list[list[float]] | None:
        recording = self._file(profile.name)
        key = self.embedding_key(profile, texts)
        entry = recording.entries.get(key)
        if not entry:
            return None
        recording.used.add(key)
        return [[float(v) for v in vector] for vector in entry["embeddings"]]

    def put_embeddings(
        self,
        profile: ProviderProfile,
        texts: list[str],
        vectors: list[list[float]],
        suite: str = "",
    ) -> None:
        recording = self._file(profile.name)
        key = self.embedding_key(profile, texts)
        entry: dict[str, Any] = {"input": texts, "embeddings": vectors}
        if suite:
            entry["suite"] = suite
        recording.entries[key] = entry
        recording.used.add(key)
        recording.written.add(key)
        recording.dropped.discard(key)
        recording.changed = True

    def prune(self, suites: set[str]) -> int:
        """Drop the recordings of these suites that this run did not use. Entries
        that name no suite (recorded by an older version) are kept: no run can tell
        whether some other suite still needs them."""
        dropped = 0
        for recording in self._files.values():
            for key in list(recording.entries):
                entry = recording.entries[key]
                owner = entry.get("suite", "") if isinstance(entry, dict) else ""
                if key not in recording.used and owner in suites:
                    del recording.entries[key]
                    recording.dropped.add(key)
                    recording.changed = True
                    dropped += 1
        return dropped

    def save(self) -> list[Path]:
        """Write the files this run changed, merged with what other runs saved since
        this one read them; first clear what a killed save left."""
        changed = sorted(name for name, file in self._files.items() if file.changed)
        if not changed:
            return []
        written = []
        with locked(self.directory / LOCK):
            remove_stale_temporaries(self.directory)
            for name in changed:
                recording = self._files[name]
                path = self.path(name)
                try:
                    entries = self._read(path)
                except ProviderError as exc:
                    log.warning("%s; writing this run's recordings over it", exc)
                    entries = dict(recording.entries)
                for key in recording.dropped:
                    entries.pop(key, None)
                for key in recording.written:
                    entries[key] = recording.entries[key]
                text = json.dumps(entries, indent=2, sort_keys=True, ensure_ascii=False)
                write_text_atomic(path, text + "\n")
                recording.entries = entries
                recording.changed = False
                recording.written.clear()
                recording.dropped.clear()
                written.append(path)
        return written


class ReplayProvider:
    def __init__(self, profile: ProviderProfile, recordings: Recordings) -> None:
        self.profile = profile
        self.recordings = recordings

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self.recordings.get_embeddings(self.profile, texts)
        if vectors is None:
            raise ProviderError(
                "no recorded embeddings for these texts in"
                f" {self.recordings.path(self.profile.name).name};"
                " run with --record against the live endpoint"
            )
        return vectors

    async def complete(self, request: ChatRequest) -> Completion:
        completion = self.recordings.get(self.profile, request)
        if completion is None:
            raise ProviderError(
                "no recording for this request in"
                f" {self.recordings.path(self.profile.name).name}"
                f" (repeat {request.repeat});"
                " the prompt, variables or parameters changed since it was recorded:"
                " run with --record against the live endpoint"
            )
        return completion
