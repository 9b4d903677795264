"""Runs suites: each case x prompt x provider x repeat, `concurrency` calls at once."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .assertions import (
    CheckError,
    GradeContext,
    UserCodeError,
    apply_transform,
    grade,
    weigh,
)
from .cache import ResponseCache
from .config import Config, ProviderProfile, recordings_collision
from .errors import ConfigError
from .http_retry import RetryPolicy
from .prompts import Prompt
from .providers.base import (
    ChatRequest,
    Completion,
    Provider,
    ProviderError,
)
from .providers.local import (
    EchoProvider,
    OfflineProvider,
)
from .providers.python_function import PythonProvider
from .providers.recordings import (
    Recordings,
    ReplayProvider,
)
from .providers.redaction import (
    RedactingProvider,
    Redactor,
)
from .results import ERRORED, FAILED, PASSED, CaseResult
from .suite import Case, Suite

if TYPE_CHECKING:
    from .providers.clients import ClientPool


@dataclass(frozen=True)
class RunOptions:
    # replay: recordings only; live: call the endpoints; record: live + save recordings
    mode: str = "replay"
    concurrency: int = 8
    repeat: int = 1
    use_cache: bool = True
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # record mode: drop the recordings of the suites run that no case used any more
    prune_recordings: bool = True

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        mode: str | None = None,
        concurrency: int | None = None,
        repeat: int = 1,
        timeout_s: float | None = None,
        use_cache: bool = True,
        prune_recordings: bool = True,
    ) -> RunOptions:
        return cls(
            mode=mode or config.mode,
            concurrency=concurrency or config.concurrency,
            repeat=repeat,
            use_cache=use_cache,
            timeout_s=timeout_s or config.timeout_s,
            retry=RetryPolicy(
                max_retries=config.max_retries,
                backoff_s=config.retry_backoff_s,
                max_wait_s=config.retry_max_wait_s,
            ),
            prune_recordings=prune_recordings,
        )


def profiles_used(suites: list[Suite]) -> set[str]:
    names = {name for suite in suites for name in suite.providers}
    for suite in suites:
        for case in suite.cases:
            names.update(
                a.extra["provider"] for a in case.assertions if "provider" in a.extra
            )
    return names


class Runner:
    def __init__(self, config: Config, options: RunOptions) -> None:
        self.config = config
        self.options = options
        # Record mode must capture fresh responses: it writes the cache, never reads it.
        self.cache = ResponseCache(
            config.cache_dir,
            read=options.use_cache and options.mode == "live",
            write=options.use_cache and options.mode != "replay",
        )
        self.recordings = Recordings(config.recordings_dir)
        self.cache_hits = 0
        self.recordings_dropped = 0
        self.profiles: dict[str, ProviderProfile] = dict(config.providers)
        self.redact = Redactor()
        self._clients: ClientPool | None = None

    def _use_profiles(self, suites: list[Suite]) -> None:
        """harness.yaml's profiles and those the suites built (from promptfoo ids)."""
        for suite in suites:
            self.profiles.update(suite.profiles)
        # Every secret of every profile: a key echoed by one endpoint is blanked too.
        self.redact = Redactor(
            secret for profile in self.profiles.values() for secret in profile.secrets()
        )

    def check_keys(self, names: set[str]) -> None:
        """Refuse before any call when a live provider's API key is not set."""
        if self.options.mode == "replay":
            return
        for name in sorted(names):
            profile = self.profiles[name]
            if profile.calls_network and profile.api_key_env and not profile.api_key():
                raise ConfigError(
                    f"provider '{name}' needs the environment variable"
                    f" {profile.api_key_env} in --mode {self.options.mode}"
                    " (or run --mode replay on the recordings)"
                )

    def check_recordings_files(self, names: set[str]) -> None:
        """Refuse before any call two profiles whose recordings would share a file
        (a promptfoo id such as `openai:x` beside a harness.yaml profile `openai_x`):
        each would replay, and overwrite, the other's."""
        recorded = sorted(n for n in names if self.profiles[n].calls_network)
        collision = recordings_collision(recorded)
        if collision is not None:
            first, second, file = collision
            raise ConfigError(
                f"providers '{first}' and '{second}' would share the recordings file"
                f" {file}; rename one of them"
            )

    def _provider(self, profile: ProviderProfile) -> Provider:
        inner: Provider
        if profile.type == "echo":
            inner = EchoProvider(profile)
        elif profile.type == "offline":
            inner = OfflineProvider(profile)
        elif profile.type == "python":
            try:
                inner = PythonProvider(
                    profile, self.config.root, timeout_s=self.options.timeout_s
                )
            except ConfigError as exc:
                raise ConfigError(f"provider '{profile.name}': {exc}") from None
        elif self.options.mode == "replay":
            inner = ReplayProvider(profile, self.recordings)
        else:
            # Imported here: the HTTP client and its certificates cost a replay nothing.
            from .providers.clients import ClientPool
            from .providers.openai_compatible import OpenAIProvider

            if self._clients is None:
                self._clients = ClientPool()
            inner = OpenAIProvider(
                profile,
                self._clients,
                timeout_s=self.options.timeout_s,
                retry=self.options.retry,
            )
        return RedactingProvider(inner, self.redact)

    async def run(
        self, suites: list[Suite], on_result: Callable[[CaseResult], None] | None = None
    ) -> list[CaseResult]:
        # What exists before the run (modules, settings, the suites) outlives it, so
        # the collector is told not to walk it while calls are in flight: a full pass
        # over a big suite takes 15 ms, and it fell in the first wave of calls. A host
        # program that froze objects itself keeps them frozen: the run leaves it be.
        ours = gc.get_freeze_count() == 0
        if ours:
            gc.freeze()
        try:
            return await self._run(suites, on_result)
        finally:
            if ours:
                gc.unfreeze()

    async def _run(
        self, suites: list[Suite], on_result: Callable[[CaseResult], None] | None
    ) -> list[CaseResult]:
        self._use_profiles(suites)
        names = profiles_used(suites)
        self.check_keys(names)
        self.check_recordings_files(names)
        calls = _Calls(
            self, {name: self._provider(self.profiles[name]) for name in names}
        )

        async def run_one(
            suite: Suite, case: Case, prompt: Prompt, provider: str, repeat: int
        ) -> CaseResult:
            result = await self._run_case(suite, case, prompt, provider, repeat, calls)
            if on_result:
                on_result(result)
            return result

        jobs = [
            run_one(suite, case, prompt, provider, repeat)
            for suite in suites
            for case in suite.cases
            for prompt in suite.prompts
            for provider in suite.providers
            for repeat in range(self.options.repeat)
        ]
        recording = self.options.mode == "record"
        self.cache.open()
        try:
            results = list(await asyncio.gather(*jobs))
            if recording and self.options.prune_recordings:
                self.recordings_dropped = self.recordings.prune(
                    {s.name for s in suites}
                )
            return results
        finally:
            self.cache.close()
            if self._clients is not None:
                await self._clients.aclose()
                self._clients = None
            if recording:
                self.recordings.save()

    async def _run_case(
        self,
        suite: Suite,
        case: Case,
        prompt: Prompt,
        provider_name: str,
        repeat: int,
        calls: _Calls,
    ) -> CaseResult:
        profile = self.profiles[provider_name]
        messages = case.messages[prompt.name]
        request = ChatRequest(
            messages=messages,
            params={**profile.params, **prompt.params},
            repeat=repeat,
            tools=prompt.tools or None,
        )
        result = CaseResult(
            suite=suite.name,
            case=case.id,
            prompt=prompt.name,
            provider=provider_name,
            repeat=repeat,
            outcome=ERRORED,
            messages=messages,
            description=case.description,
            threshold=case.threshold,
        )
        try:
            completion, result.cached = await calls.complete(
                provider_name, request, suite.name
            )
        except ProviderError as exc:
            result.error = str(exc)
            return result
        result.output = completion.text
        result.tool_calls = [c.to_dict() for c in completion.tool_calls]
        result.finish_reason = completion.finish_reason
        result.latency_ms = completion.latency_ms
        result.prompt_tokens = completion.prompt_tokens
        result.completion_tokens = completion.completion_tokens
        result.cost_usd = profile.cost_usd(
            completion.prompt_tokens, completion.completion_tokens
        )
        context = GradeContext(
            completion=completion,
            profile=profile,
            messages=messages,
            variables=case.variables,
            case_id=case.id,
            repeat=repeat,
            judge=lambda name, req: calls.judge(name, req, suite.name),
            embed=lambda name, texts: calls.embed(name, texts, suite.name),
            # Tools a promptfoo provider declares in its config travel in its params.
            tools=prompt.tools or profile.params.get("tools") or [],
        )
        if case.transform is not None:
            try:
                context.transformed = apply_transform(case.transform, context)
            except CheckError as exc:
                result.error = f"the case's transform: {exc}"
                if isinstance(exc, UserCodeError):
                    result.outcome = FAILED
                return result
        for assertion in case.assertions:
            result.assertions.append(await grade(assertion, context))
        _score(result, case.threshold)
        return result


def _score(result: CaseResult, threshold: float) -> None:
    """The weighted share of assertions passed, skipped ones left out; the outcome.
    A case without assertions passes: its call succeeded."""
    errors = [a.error for a in result.assertions if a.error]
    result.score, reached = weigh(result.assertions, threshold)
    if errors:
        result.error = "; ".join(errors)
        if all(a.raised for a in result.assertions if a.error):
            result.outcome = FAILED  # your own check raised: no service to blame
    elif reached:
        result.outcome = PASSED
    else:
        result.outcome = FAILED


class _Calls:
    """The calls of one run: through the cache, at most `concurrency` at once, and
    into the recordings in record mode."""

    def __init__(self, runner: Runner, providers: dict[str, Provider]) -> None:
        self.runner = runner
        self.providers = providers
        self.semaphore = asyncio.Semaphore(runner.options.concurrency)
        self.recording = runner.options.mode == "record"

    async def complete(
        self, name: str, request: ChatRequest, suite: str
    ) -> tuple[Completion, bool]:
        """The completion, and whether it came from the cache."""
        provider, cache = self.providers[name], self.runner.cache
        profile = provider.profile
        cacheable = (cache.read or cache.write) and profile.calls_network
        key = ResponseCache.key(profile, request) if cacheable else ""
        if key and (hit := cache.get(key)) is not None:
            self.runner.cache_hits += 1
            return hit, True
        async with self.semaphore:
            completion = await provider.complete(request)
        # Only reached on success: an error raised above, and is never cached. The
        # file write runs in a thread so that it does not hold up other responses.
        if key and cache.write:
            await asyncio.to_thread(cache.put, key, completion)
        if self.recording and profile.calls_network:
            self.runner.recordings.put(profile, request, completion, suite)
        return completion, False

    async def judge(self, name: str, request: ChatRequest, suite: str) -> Completion:
        params = {**self.runner.profiles[name].params, **request.params}
        return (await self.complete(name, replace(request, params=params), suite))[0]

    async def embed(self, name: str, texts: list[str], suite: str) -> list[list[float]]:
        provider = self.providers[name]
        async with self.semaphore:
            vectors = await provider.embed(texts)
        if self.recording and provider.profile.calls_network:
            self.runner.recordings.put_embeddings(
                provider.profile, texts, vectors, suite
            )
        return vectors


def run_suites(
    suites: list[Suite],
    config: Config,
    options: RunOptions,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    return asyncio.run(Runner(config, options).run(suites, on_result))
