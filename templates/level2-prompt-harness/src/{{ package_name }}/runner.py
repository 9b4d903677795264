"""Runs suites: each case x prompt x provider x repeat, `concurrency` calls at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .assertions import GradeContext, grade
from .cache import ResponseCache
from .config import Config, ConfigError, ProviderProfile
from .providers import (
    ChatRequest,
    ClientPool,
    Completion,
    EchoProvider,
    OpenAIProvider,
    Provider,
    ProviderError,
    RecordingProvider,
    Recordings,
    ReplayProvider,
    RetryPolicy,
)
from .results import ERRORED, FAILED, PASSED, CaseResult
from .suite import Case, Suite


@dataclass(frozen=True)
class RunOptions:
    # replay: recordings only; live: call the endpoints; record: live + save recordings
    mode: str = "replay"
    concurrency: int = 8
    repeat: int = 1
    use_cache: bool = True
    timeout_s: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_config(cls, config: Config, **overrides: object) -> RunOptions:
        settings: dict[str, object] = {
            "mode": config.mode,
            "concurrency": config.concurrency,
            "timeout_s": config.timeout_s,
            "retry": RetryPolicy(
                max_retries=config.max_retries, backoff_s=config.retry_backoff_s
            ),
        }
        settings.update(
            {key: value for key, value in overrides.items() if value is not None}
        )
        return cls(**settings)  # type: ignore[arg-type]


def profiles_used(suites: list[Suite]) -> set[str]:
    names = {name for suite in suites for name in suite.providers}
    for suite in suites:
        for case in suite.cases:
            names.update(
                a.extra["provider"] for a in case.assertions if a.type == "llm-judge"
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

    def check_keys(self, names: set[str]) -> None:
        """Refuse before any call when a live provider's API key is not set."""
        if self.options.mode == "replay":
            return
        for name in sorted(names):
            profile = self.config.providers[name]
            if profile.calls_network and profile.api_key_env and not profile.api_key():
                raise ConfigError(
                    f"provider '{name}' needs the environment variable"
                    f" {profile.api_key_env} in --mode {self.options.mode}"
                    " (or run --mode replay on the recordings)"
                )

    def _provider(self, profile: ProviderProfile, clients: ClientPool) -> Provider:
        if profile.type == "echo":
            return EchoProvider(profile)
        if self.options.mode == "replay":
            return ReplayProvider(profile, self.recordings)
        live = OpenAIProvider(
            profile, clients, timeout_s=self.options.timeout_s, retry=self.options.retry
        )
        if self.options.mode == "record":
            return RecordingProvider(live, self.recordings)
        return live

    async def run(
        self, suites: list[Suite], on_result: Callable[[CaseResult], None] | None = None
    ) -> list[CaseResult]:
        names = profiles_used(suites)
        self.check_keys(names)
        semaphore = asyncio.Semaphore(self.options.concurrency)
        clients = ClientPool()
        providers = {
            name: self._provider(self.config.providers[name], clients) for name in names
        }
        uses_cache = self.cache.read or self.cache.write  # both off in replay mode
        cacheable = {
            name: uses_cache and provider.profile.calls_network
            for name, provider in providers.items()
        }

        async def complete(name: str, request: ChatRequest) -> tuple[Completion, bool]:
            provider = providers[name]
            key = (
                ResponseCache.key(provider.profile, request) if cacheable[name] else ""
            )
            if key and (hit := self.cache.get(key)) is not None:
                self.cache_hits += 1
                return hit, True
            async with semaphore:
                completion = await provider.complete(request)
            # Only reached on success: an error raised above, and is never cached. The
            # file write runs in a thread so that it does not hold up other responses.
            if key and self.cache.write:
                await asyncio.to_thread(self.cache.put, key, completion)
            return completion, False

        async def judge(name: str, request: ChatRequest) -> Completion:
            return (await complete(name, request))[0]

        async def run_one(
            suite: Suite, case: Case, prompt_name: str, provider_name: str, repeat: int
        ) -> CaseResult:
            result = await self._run_case(
                suite, case, prompt_name, provider_name, repeat, complete, judge
            )
            if on_result:
                on_result(result)
            return result

        jobs = [
            run_one(suite, case, prompt.name, provider_name, repeat)
            for suite in suites
            for case in suite.cases
            for prompt in suite.prompts
            for provider_name in suite.providers
            for repeat in range(self.options.repeat)
        ]
        try:
            return list(await asyncio.gather(*jobs))
        finally:
            await clients.aclose()
            if self.options.mode == "record":
                self.recordings.save()

    async def _run_case(
        self,
        suite: Suite,
        case: Case,
        prompt_name: str,
        provider_name: str,
        repeat: int,
        complete: Callable[[str, ChatRequest], Awaitable[tuple[Completion, bool]]],
        judge: Callable[[str, ChatRequest], Awaitable[Completion]],
    ) -> CaseResult:
        profile = self.config.providers[provider_name]
        prompt = next(p for p in suite.prompts if p.name == prompt_name)
        messages = case.messages[prompt_name]
        request = ChatRequest(
            messages=messages, params={**profile.params, **prompt.params}, repeat=repeat
        )
        result = CaseResult(
            suite=suite.name,
            case=case.id,
            prompt=prompt_name,
            provider=provider_name,
            repeat=repeat,
            outcome=ERRORED,
            messages=messages,
            description=case.description,
            threshold=case.threshold,
        )
        try:
            completion, result.cached = await complete(provider_name, request)
        except ProviderError as exc:
            result.error = str(exc)
            return result
        result.output = completion.text
        result.latency_ms = completion.latency_ms
        result.prompt_tokens = completion.prompt_tokens
        result.completion_tokens = completion.completion_tokens
        result.cost_usd = profile.cost_usd(
            completion.prompt_tokens, completion.completion_tokens
        )
        context = GradeContext(
            completion, profile, messages, case.variables, case.id, repeat, judge
        )
        for assertion in case.assertions:
            result.assertions.append(
                await grade(assertion, context, self.config.providers)
            )
        errors = [a.error for a in result.assertions if a.error]
        total = sum(a.weight for a in result.assertions)
        earned = sum(a.weight for a in result.assertions if a.passed)
        result.score = (
            earned / total if total else float(all(a.passed for a in result.assertions))
        )
        if errors:
            result.error = "; ".join(errors)
        elif result.score >= case.threshold - 1e-9:
            result.outcome = PASSED
        else:
            result.outcome = FAILED
        return result


def run_suites(
    suites: list[Suite],
    config: Config,
    options: RunOptions,
    on_result: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    return asyncio.run(Runner(config, options).run(suites, on_result))
