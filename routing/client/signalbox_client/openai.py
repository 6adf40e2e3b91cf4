"""The OpenAI Python SDK routed by a Signalbox policy (``pip install 'signalbox-client[openai]'``).

``RoutedOpenAI`` wraps a ``RoutingClient`` and an ``openai.OpenAI`` client (or several, one per
provider of OpenAI-compatible APIs): each ``chat.completions.create(task_type=..., ...)`` is one
``RoutingClient.run()``, so the policy picks the model, the engine applies cascades and fallbacks,
and every attempt is logged as a decision record with the response's token usage (the server prices
it from the catalog). ``AsyncRoutedOpenAI`` does the same over ``AsyncRoutingClient`` and
``openai.AsyncOpenAI``. ``stream=True`` returns a ``RunStream`` (``AsyncRunStream``) of the
completion's chunks, unchanged: a failure before the first chunk falls back as the policy says, and
the attempt is logged with the final chunk's usage when the stream ends (or errs, or is closed).
See docs/integrations/openai.md.

Importing ``signalbox_client`` never imports this module (nor openai).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, NoReturn, overload

import openai
from openai.types.chat import ChatCompletion

from ._aio import AsyncRoutingClient
from ._chat import chunk_usage, completion_result, stream_arguments, usage_only
from ._stream import AsyncRunStream, RunStream
from ._sync import RoutingClient
from ._types import Attempt, CallResult, ProviderError, RunResult

__all__ = ["AsyncRoutedOpenAI", "RoutedOpenAI", "chunk_usage", "completion_result", "outcome_of"]


def _transport_timeouts() -> tuple[type[BaseException], ...]:
    """The read-timeout errors of the HTTP libraries the OpenAI SDK streams with (httpx, or the
    httpx2 fork of newer SDKs): raised unwrapped by a stream that stalls after its first chunk."""
    import httpx

    found: list[type[BaseException]] = [httpx.TimeoutException]
    try:
        import httpx2  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        found.append(httpx2.TimeoutException)
    return tuple(found)


_TIMEOUTS = _transport_timeouts()


def outcome_of(exc: BaseException) -> str | None:
    """The engine outcome of an OpenAI SDK error the SDK's own classification would miss (its
    timeout is no ``TimeoutError``), or None to leave it to ``classify_exception``: 429 is
    ``rate_limited`` and a 5xx ``error`` by status code already."""
    if isinstance(exc, (openai.APITimeoutError, *_TIMEOUTS)):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "error"
    return None


class _OpenAIFailure(ProviderError):
    """An OpenAI error with its outcome, re-raised as the original when the run fails."""

    def __init__(self, outcome: str, original: openai.OpenAIError) -> None:
        super().__init__(outcome, str(original))
        self.original = original


class _Clients:
    def __init__(self, client: Any, clients: Mapping[str, Any] | None) -> None:
        self.default = client
        self.by_provider = dict(clients or {})

    def of(self, attempt: Attempt) -> Any:
        """The client of the attempt's provider, else the default one."""
        return self.by_provider.get(attempt.provider, self.default)


def _split(kwargs: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    if "model" in kwargs:
        raise TypeError("the policy picks the model: pass task_type (and routing fields), not model")
    if not stream and kwargs.get("stream"):
        raise TypeError("run() returns a whole completion: use stream() (or create(stream=True)) for streams")
    kwargs.pop("stream", None)
    return kwargs


def _reraise(exc: openai.OpenAIError) -> NoReturn:
    """Raise ``exc`` again, wrapped with its outcome when ``classify_exception`` would miss it."""
    outcome = outcome_of(exc)
    if outcome is None:
        raise exc
    raise _OpenAIFailure(outcome, exc) from exc


class RoutedOpenAI:
    """``openai.OpenAI`` with the model chosen by a Signalbox policy on every call.

    ``clients`` maps a provider name of the catalog (``"anthropic"``, ``"google"``) to an
    OpenAI-compatible client for it; attempts of other providers use ``client``. Give the OpenAI
    clients ``max_retries=0`` so the policy's fallbacks, not the SDK's retries, handle 429 and 5xx.
    """

    def __init__(self, router: RoutingClient, client: openai.OpenAI, *, clients: Mapping[str, Any] | None = None):
        self.router = router
        self._clients = _Clients(client, clients)
        self.chat = _Chat(self)

    def run(
        self,
        task_type: str,
        *,
        messages: Any,
        validate: Callable[[Any], bool] | None = None,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **create: Any,
    ) -> RunResult:
        """One routed chat completion: the ``RunResult`` of ``RoutingClient.run()`` (its
        ``response`` the last ``ChatCompletion``, its ``attempts`` each model tried). ``routing``
        holds the request fields the policy routes on (``prompt_tokens``, ``user_tier``…);
        ``create`` the other arguments of ``chat.completions.create``. When no attempt succeeds,
        the last OpenAI error is raised."""
        create = _split(create)

        def call(attempt: Attempt) -> CallResult:
            try:
                completion = self._clients.of(attempt).chat.completions.create(
                    model=attempt.model, messages=messages, **create
                )
            except openai.OpenAIError as exc:
                _reraise(exc)
            return completion_result(completion)

        try:
            return self.router.run(task_type, call, validate=validate, attributes=attributes, **dict(routing or {}))
        except _OpenAIFailure as failure:
            raise failure.original from None

    def stream(
        self,
        task_type: str,
        *,
        messages: Any,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **create: Any,
    ) -> RunStream:
        """One routed, streamed chat completion: a ``RunStream`` of ``ChatCompletionChunk`` objects.
        A failure before the first chunk falls back as the policy says; the attempt that streamed
        is logged with the final chunk's usage when the stream ends, errs or is closed. When no
        attempt starts a stream, the last OpenAI error is raised."""
        create, added = stream_arguments(_split(create, stream=True))

        def call(attempt: Attempt) -> Any:
            try:
                return self._clients.of(attempt).chat.completions.create(
                    model=attempt.model, messages=messages, stream=True, **create
                )
            except openai.OpenAIError as exc:
                _reraise(exc)

        try:
            return self.router.run_stream(
                task_type,
                call,
                usage=chunk_usage,
                hide=usage_only if added else None,
                classify=outcome_of,
                attributes=attributes,
                **dict(routing or {}),
            )
        except _OpenAIFailure as failure:
            raise failure.original from None


class _Chat:
    def __init__(self, owner: RoutedOpenAI) -> None:
        self.completions = _Completions(owner)


class _Completions:
    def __init__(self, owner: RoutedOpenAI) -> None:
        self._owner = owner

    @overload
    def create(self, *, task_type: str, messages: Any, stream: Literal[True], **kwargs: Any) -> RunStream: ...
    @overload
    def create(
        self, *, task_type: str, messages: Any, stream: Literal[False] = False, **kwargs: Any
    ) -> ChatCompletion: ...
    def create(
        self, *, task_type: str, messages: Any, stream: bool = False, **kwargs: Any
    ) -> ChatCompletion | RunStream:
        """``client.chat.completions.create`` with ``task_type`` instead of ``model`` (the
        ``RoutedOpenAI.run`` arguments ``validate``, ``attributes`` and ``routing`` also apply;
        with ``stream=True``, those of ``RoutedOpenAI.stream``)."""
        if stream:
            return self._owner.stream(task_type, messages=messages, **kwargs)
        response: ChatCompletion = self._owner.run(task_type, messages=messages, **kwargs).response
        return response


class AsyncRoutedOpenAI:
    """``openai.AsyncOpenAI`` with the model chosen by a Signalbox policy (see ``RoutedOpenAI``)."""

    def __init__(
        self, router: AsyncRoutingClient, client: openai.AsyncOpenAI, *, clients: Mapping[str, Any] | None = None
    ):
        self.router = router
        self._clients = _Clients(client, clients)
        self.chat = _AsyncChat(self)

    async def run(
        self,
        task_type: str,
        *,
        messages: Any,
        validate: Callable[[Any], bool] | None = None,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **create: Any,
    ) -> RunResult:
        """``RoutedOpenAI.run``, awaited."""
        create = _split(create)

        async def call(attempt: Attempt) -> CallResult:
            try:
                completion = await self._clients.of(attempt).chat.completions.create(
                    model=attempt.model, messages=messages, **create
                )
            except openai.OpenAIError as exc:
                _reraise(exc)
            return completion_result(completion)

        try:
            return await self.router.run(
                task_type, call, validate=validate, attributes=attributes, **dict(routing or {})
            )
        except _OpenAIFailure as failure:
            raise failure.original from None

    async def stream(
        self,
        task_type: str,
        *,
        messages: Any,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **create: Any,
    ) -> AsyncRunStream:
        """``RoutedOpenAI.stream``, awaited: an ``AsyncRunStream`` of the chunks."""
        create, added = stream_arguments(_split(create, stream=True))

        async def call(attempt: Attempt) -> Any:
            try:
                return await self._clients.of(attempt).chat.completions.create(
                    model=attempt.model, messages=messages, stream=True, **create
                )
            except openai.OpenAIError as exc:
                _reraise(exc)

        try:
            return await self.router.run_stream(
                task_type,
                call,
                usage=chunk_usage,
                hide=usage_only if added else None,
                classify=outcome_of,
                attributes=attributes,
                **dict(routing or {}),
            )
        except _OpenAIFailure as failure:
            raise failure.original from None


class _AsyncChat:
    def __init__(self, owner: AsyncRoutedOpenAI) -> None:
        self.completions = _AsyncCompletions(owner)


class _AsyncCompletions:
    def __init__(self, owner: AsyncRoutedOpenAI) -> None:
        self._owner = owner

    @overload
    async def create(
        self, *, task_type: str, messages: Any, stream: Literal[True], **kwargs: Any
    ) -> AsyncRunStream: ...
    @overload
    async def create(
        self, *, task_type: str, messages: Any, stream: Literal[False] = False, **kwargs: Any
    ) -> ChatCompletion: ...
    async def create(
        self, *, task_type: str, messages: Any, stream: bool = False, **kwargs: Any
    ) -> ChatCompletion | AsyncRunStream:
        """``AsyncOpenAI.chat.completions.create`` with ``task_type`` instead of ``model``."""
        if stream:
            return await self._owner.stream(task_type, messages=messages, **kwargs)
        result = await self._owner.run(task_type, messages=messages, **kwargs)
        response: ChatCompletion = result.response
        return response
