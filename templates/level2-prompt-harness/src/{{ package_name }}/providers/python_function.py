"""Your own function as the provider: your RAG pipeline or agent, not a raw model."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import ProviderProfile
from ..configfile import not_a_file
from ..errors import ConfigError
from .base import (
    ChatRequest,
    Completion,
    NoEmbeddings,
    ProviderError,
    ToolCall,
    arguments_text,
)

# What the user's own code may raise and the run survive, as an error of its case or
# suite: sys.exit() included, which would otherwise end the whole run without a word.
USER_CODE_FAILURES = (Exception, SystemExit)


def load_function(reference: str, root: Path) -> Callable[..., Any]:
    """`module:function`, importable from the project folder; ConfigError if not."""
    if reference.count(":") != 1:
        raise ConfigError(f"expected 'module:function', got {reference!r}")
    module_name, function_name = reference.split(":")
    # User code lives beside the suites (suite_checks.py, my_app.py in the project).
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        module = importlib.import_module(module_name)
    except USER_CODE_FAILURES as exc:
        raise ConfigError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"module '{module_name}' has no function '{function_name}'")
    return function  # type: ignore[no-any-return]


_FILE_FUNCTIONS: dict[tuple[Path, str], Callable[..., Any]] = {}


def load_file_function(reference: str, base: Path, default: str) -> Callable[..., Any]:
    """`file://path.py` or `file://path.py:function` (promptfoo's form), the path
    relative to `base`; the function is `default` unless named. ConfigError if not."""
    location = reference.removeprefix("file://").removeprefix("python:")
    name = default
    if ":" in location and not location.endswith(".py"):
        location, name = location.rsplit(":", 1)
    path = (base / location).resolve()
    if path.suffix != ".py":
        raise ConfigError(f"{reference}: only Python files (.py) run here")
    key = (path, name)
    if key not in _FILE_FUNCTIONS:
        problem = not_a_file(path)
        if problem:
            raise ConfigError(f"{reference}: {path}: {problem}")
        # A name of its own per file, so two check.py files in two folders coexist.
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        spec = importlib.util.spec_from_file_location(f"_user_{digest}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"{reference}: cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except USER_CODE_FAILURES as exc:
            raise ConfigError(
                f"{reference}: importing it raised {type(exc).__name__}: {exc}"
            ) from None
        function = getattr(module, name, None)
        if not callable(function):
            raise ConfigError(f"{reference}: {path.name} has no function '{name}'")
        _FILE_FUNCTIONS[key] = function
    return _FILE_FUNCTIONS[key]


class PythonProvider(NoEmbeddings):
    """Calls `function(messages, context)`: an `async def` on the event loop, a plain
    function in a worker thread, so up to `concurrency` calls overlap either way. It
    returns the answer text, or a mapping with `output` and optionally `tool_calls`,
    `prompt_tokens`, `completion_tokens`. An exception it raises makes the case
    errored, and so does a call that takes longer than `timeout_s`."""

    def __init__(
        self, profile: ProviderProfile, root: Path, timeout_s: float | None = None
    ) -> None:
        self.profile = profile
        self.timeout_s = timeout_s
        if profile.function.startswith("file://"):
            self.function = load_file_function(profile.function, root, "call_api")
        else:
            self.function = load_function(profile.function, root)

    def _arguments(self, request: ChatRequest) -> tuple[Any, dict[str, Any]]:
        if self.profile.call_style == "promptfoo":
            # promptfoo's call_api(prompt, options, context): the prompt as text (a
            # chat prompt as its JSON), the provider's config among the options.
            messages = request.messages
            if len(messages) == 1 and messages[0]["role"] == "user":
                prompt: Any = messages[0]["content"]
            else:
                prompt = json.dumps(messages, ensure_ascii=False)
            return prompt, {"config": request.params, "tools": request.tools or []}
        context = {
            "params": request.params,
            "tools": request.tools or [],
            "repeat": request.repeat,
        }
        return request.messages, context

    async def _call(self, request: ChatRequest) -> Any:
        first, second = self._arguments(request)
        extra = (
            ({"vars": {}, "prompt": {"raw": first}},)
            if self.profile.call_style == "promptfoo"
            else ()
        )
        if inspect.iscoroutinefunction(self.function):
            return await self.function(first, second, *extra)
        # In a thread of its own, so `concurrency` calls overlap; a daemon thread, so
        # a function that never returns is left behind when its call times out, and
        # the process can still end (asyncio.to_thread's pool would wait for it).
        return await _in_daemon_thread(self.function, first, second, *extra)

    async def _outcome(self, request: ChatRequest) -> tuple[Any, BaseException | None]:
        """What the function returned, or what it raised: a task that raised
        SystemExit would end the event loop with it."""
        try:
            return await self._call(request), None
        except USER_CODE_FAILURES as exc:
            return None, exc

    async def complete(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        # asyncio.wait rather than wait_for: a TimeoutError the function raises
        # itself is its own failure, not the deadline passing.
        call = asyncio.ensure_future(self._outcome(request))
        try:
            done, _ = await asyncio.wait({call}, timeout=self.timeout_s)
        finally:
            if not call.done():
                call.cancel()
        if not done:
            raise ProviderError(
                f"{self.profile.function} timed out after {self.timeout_s:g} s"
                " (--timeout)"
            )
        returned, failure = call.result()
        if failure is not None:
            raise ProviderError(
                f"{self.profile.function} raised {type(failure).__name__}: {failure}"
            )
        latency_ms = round((time.perf_counter() - started) * 1000, 1)
        if isinstance(returned, str):
            returned = {"output": returned}  # checked below as a mapping's output is
        elif self.profile.call_style == "promptfoo" and isinstance(returned, Mapping):
            returned = _promptfoo_reply(returned, self.profile.function)
        if isinstance(returned, Mapping) and isinstance(
            returned.get("output", ""), str
        ):
            calls = returned.get("tool_calls") or []
            try:
                tool_calls = tuple(
                    ToolCall(
                        str(c["name"]),
                        arguments_text(c.get("arguments", {})),
                        str(c.get("id", "")),
                    )
                    for c in calls
                )
            except (KeyError, TypeError):
                raise ProviderError(
                    f"{self.profile.function}: each tool call needs a 'name'"
                ) from None
            except ValueError as exc:  # text that is not text: a lone surrogate
                raise ProviderError(f"{self.profile.function}: {exc}") from None
            try:
                return Completion(
                    text=returned.get("output", ""),
                    prompt_tokens=returned.get("prompt_tokens"),
                    completion_tokens=returned.get("completion_tokens"),
                    latency_ms=latency_ms,
                    finish_reason="tool_calls" if tool_calls else "stop",
                    tool_calls=tool_calls,
                )
            except ValueError as exc:
                raise ProviderError(f"{self.profile.function}: {exc}") from None
        raise ProviderError(
            f"{self.profile.function} returned {type(returned).__name__};"
            " expected text or a mapping with 'output'"
        )


def _in_daemon_thread(function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
    """`function(*args)` called in a new daemon thread; its result or exception
    arrives in the returned future, unless the future was given up on by then."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Callable[[Any], object], value: Any) -> None:
        if not future.done():
            outcome(value)

    def work() -> None:
        try:
            value = function(*args)
        except BaseException as exc:  # handed over to the caller, which judges it
            outcome, value = future.set_exception, exc
        else:
            outcome = future.set_result
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
            loop.call_soon_threadsafe(settle, outcome, value)

    threading.Thread(target=work, daemon=True, name="python-provider").start()
    return future


def _promptfoo_reply(returned: Mapping[str, Any], where: str) -> dict[str, Any]:
    """promptfoo's {output, error, tokenUsage} as the mapping the harness takes; an
    output that is not text (tool calls, an object) reaches the checks as JSON."""
    if returned.get("error"):
        raise ProviderError(f"{where} returned the error: {returned['error']}")
    output = returned.get("output", "")
    usage = returned.get("tokenUsage") or {}
    reply: dict[str, Any] = {
        "prompt_tokens": usage.get("prompt"),
        "completion_tokens": usage.get("completion"),
    }
    if _is_tool_calls(output):
        # OpenAI-shaped tool calls: kept as calls, so tool assertions see them too.
        reply["output"] = ""
        reply["tool_calls"] = [
            {
                "id": call.get("id", ""),
                "name": call["function"]["name"],
                "arguments": call["function"].get("arguments", "{}"),
            }
            for call in output
        ]
    elif isinstance(output, str):
        reply["output"] = output
    else:
        reply["output"] = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    return reply


def _is_tool_calls(output: Any) -> bool:
    return (
        isinstance(output, list)
        and bool(output)
        and all(
            isinstance(call, dict)
            and isinstance(call.get("function"), dict)
            and isinstance(call["function"].get("name"), str)
            for call in output
        )
    )
