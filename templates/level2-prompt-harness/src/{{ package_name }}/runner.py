"""Runs suites: each case x prompt x provider x repeat, `concurrency` calls at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from .assertions import GradeContext, grade
from .cache import ResponseCache
from .config import Config, ProviderProfile
from .errors import ConfigError
from .providers import (
    ChatRequest,
    ClientPool,
    Completion,
    EchoProvider,
    OfflineProvider,
    OpenAIProvider,
    Provider,
    ProviderError,
    PythonProvider,
    Recordings,
    RedactingProvider,
    Redactor,
    ReplayProvider,
    RetryPolicy,
)
from .results import ERRORED, FAILED, PASSED, CaseResult
from .suite import Case, Suite

# (profile name, request, suite name) -> (completion, whether it came from the cache)
CompleteCall = Callable[[str, ChatRequest, str], Awaitable[tuple[Completion, bool]]]


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
                max_retries=config.max_retries, backoff_s=config.retry_backoff_s
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
        # Every secret of every profile: a key echoed by one endpoint is blanked too.
        self.redact = Redactor(
            secret
            for profile in config.providers.values()
            for secret in profile.secrets()
        )

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
        inner: Provider
        if profile.type == "echo":
            inner = EchoProvider(profile)
        elif profile.type == "offline":
            inner = OfflineProvider(profile)
        elif profile.type == "python":
            try:
                inner = PythonProvider(profile, self.config.root)
            except ConfigError as exc:
                raise ConfigError(f"provider '{profile.name}': {exc}") from None
        elif self.options.mode == "replay":
            inner = ReplayProvider(profile, self.recordings)
        else:
            inner = OpenAIProvider(
                profile,
                clients,
                timeout_s=self.options.timeout_s,
                retry=self.options.retry,
            )
        return RedactingProvider(inner, self.redact)

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
        recording = self.options.mode == "record"

        async def complete(
            name: str, request: ChatRequest, suite: str
        ) -> tuple[Completion, bool]:
            provider = providers[name]
            profile = provider.profile
            cacheable = uses_cache and profile.calls_network
            key = ResponseCache.key(profile, request) if cacheable else ""
            if key and (hit := self.cache.get(key)) is not None:
                self.cache_hits += 1
                return hit, True
            async with semaphore:
                completion = await provider.complete(request)
            # Only reached on success: an error raised above, and is never cached. The
            # file write runs in a thread so that it does not hold up other responses.
            if key and self.cache.write:
                await asyncio.to_thread(self.cache.put, key, completion)
            if recording and profile.calls_network:
                self.recordings.put(profile, request, completion, suite)
            return completion, False

        async def run_one(
            suite: Suite, case: Case, prompt_name: str, provider_name: str, repeat: int
        ) -> CaseResult:
            result = await self._run_case(
                suite,
                case,
                prompt_name,
                provider_name,
                repeat,
                complete,
                providers,
                semaphore,
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
            results = list(await asyncio.gather(*jobs))
            if recording and self.options.prune_recordings:
                self.recordings_dropped = self.recordings.prune(
                    {s.name for s in suites}
                )
            return results
        finally:
            await clients.aclose()
            if recording:
                self.recordings.save()

    async def _run_case(
        self,
        suite: Suite,
        case: Case,
        prompt_name: str,
        provider_name: str,
        repeat: int,
        complete: CompleteCall,
        providers: dict[str, Provider],
        semaphore: asyncio.Semaphore,
    ) -> CaseResult:
        profile = self.config.providers[provider_name]
        prompt = next(p for p in suite.prompts if p.name == prompt_name)
        messages = case.messages[prompt_name]
        request = ChatRequest(
            messages=messages,
            params={**profile.params, **prompt.params},
            repeat=repeat,
            tools=prompt.tools or None,
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

        async def ask(name: str, req: ChatRequest) -> tuple[Completion, bool]:
            return await complete(name, req, suite.name)

        try:
            completion, result.cached = await ask(provider_name, request)
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

        async def judge(name: str, judge_request: ChatRequest) -> Completion:
            params = {**self.config.providers[name].params, **judge_request.params}
            return (await ask(name, replace(judge_request, params=params)))[0]

        async def embed(name: str, texts: list[str]) -> list[list[float]]:
            provider = providers[name]
            async with semaphore:
                vectors = await provider.embed(texts)
            if self.options.mode == "record" and provider.profile.calls_network:
                self.recordings.put_embeddings(
                    provider.profile, texts, vectors, suite.name
                )
            return vectors

        context = GradeContext(
            completion=completion,
            profile=profile,
            messages=messages,
            variables=case.variables,
            case_id=case.id,
            repeat=repeat,
            judge=judge,
            embed=embed,
            tools=prompt.tools,
        )
        for assertion in case.assertions:
            result.assertions.append(await grade(assertion, context))
        counted = [a for a in result.assertions if not a.skipped]
        errors = [a.error for a in counted if a.error]
        total = sum(a.weight for a in counted)
        earned = sum(a.weight for a in counted if a.passed)
        result.score = (
            earned / total if total else float(all(a.passed for a in counted))
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
