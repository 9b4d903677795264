"""Providers that need no model: the echo of the prompt, and offline embeddings."""

from __future__ import annotations

import hashlib
import json
import math

from ..config import ProviderProfile
from .base import ChatRequest, Completion, NoEmbeddings


class EchoProvider(NoEmbeddings):
    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile

    async def complete(self, request: ChatRequest) -> Completion:
        """The prompt as sent: a lone user message as it is (as promptfoo's echo
        returns it), several messages each under its [role] (or, for a promptfoo
        config's echo, as the JSON list promptfoo would send)."""
        messages = request.messages
        if len(messages) == 1 and messages[0]["role"] == "user":
            text = messages[0]["content"]
        elif self.profile.call_style == "promptfoo":
            # promptfoo sends a chat prompt as its JSON text, which its echo returns.
            text = json.dumps(messages, indent=2, ensure_ascii=False)
        else:
            text = "\n\n".join(
                f"[{message['role']}]\n{message['content']}" for message in messages
            )
        return Completion(
            text=text,
            prompt_tokens=0,
            completion_tokens=0,
            model="echo",
            finish_reason="stop",
        )


def trigram_embedding(text: str, dimensions: int = 256) -> list[float]:
    """A unit vector of hashed character trigrams: close texts get close vectors."""
    vector = [0.0] * dimensions
    padded = f"  {text.casefold()}  "
    for start in range(len(padded) - 2):
        digest = hashlib.blake2b(padded[start : start + 3].encode(), digest_size=4)
        vector[int.from_bytes(digest.digest(), "little") % dimensions] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class OfflineProvider:
    """Embeddings without a model (for tests and offline runs); chat answers echo."""

    def __init__(self, profile: ProviderProfile) -> None:
        self.profile = profile

    async def complete(self, request: ChatRequest) -> Completion:
        return await EchoProvider(self.profile).complete(request)

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [trigram_embedding(text) for text in texts]
