"""Recorded responses (--record) and the provider that replays them offline."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import jsonvalue
from ..atomic import write_text_atomic
from ..config import ProviderProfile
from .base import ChatRequest, Completion, ProviderError, request_fingerprint


@dataclass
class _RecordingFile:
    entries: dict[str, Any]
    used: set[str] = field(default_factory=set)
    changed: bool = False


class Recordings:
    """Recorded responses: one JSON file per provider profile in recordings/, sorted so
    that re-recording gives clean diffs.

    Entries are keyed by profile name, model, messages, parameters, tools and repeat
    index. They hold the request (so a reviewer can read what was asked), the suite
    that asked, and the response; never headers or keys.
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
        # A promptfoo id such as openai:gpt-4o-mini names a profile; ':' and '/' do
        # not belong in a file name on every system.
        safe = re.sub(r"[^\w.-]", "_", provider_name)
        return self.directory / f"{safe}.json"

    def _file(self, provider_name: str) -> _RecordingFile:
        if provider_name not in self._files:
            path = self.path(provider_name)
            try:
                entries = jsonvalue.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                entries = {}
            except (OSError, ValueError) as exc:
                raise ProviderError(f"{path}: unreadable recordings ({exc})") from None
            if not isinstance(entries, dict):
                raise ProviderError(f"{path}: unreadable recordings (not a mapping)")
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
                    recording.changed = True
                    dropped += 1
        return dropped

    def save(self) -> list[Path]:
        written = []
        for name, recording in sorted(self._files.items()):
            if not recording.changed:
                continue
            path = self.path(name)
            text = json.dumps(
                recording.entries, indent=2, sort_keys=True, ensure_ascii=False
            )
            write_text_atomic(path, text + "\n")
            recording.changed = False
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
