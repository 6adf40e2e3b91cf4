"""The OpenAI Python SDK routed by a Signalbox policy (``pip install 'signalbox-client[openai]'``).

``RoutedOpenAI`` wraps a ``RoutingClient`` and an ``openai.OpenAI`` client (or several, one per
provider of OpenAI-compatible APIs): each ``chat.completions.create(task_type=..., ...)`` is one
``RoutingClient.run()``, so the policy picks the model, the engine applies cascades and fallbacks,
and every attempt is logged as a decision record with the response's token usage (the server prices
it from the catalog). ``AsyncRoutedOpenAI`` does the same over ``AsyncRoutingClient`` and
``openai.AsyncOpenAI``. See docs/integrations/openai.md.

Importing ``signalbox_client`` never imports this module (nor openai).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from ._aio import AsyncRoutingClient
from ._sync import RoutingClient
from ._types import Attempt, CallResult, ProviderError, RunResult

__all__ = ["AsyncRoutedOpenAI", "RoutedOpenAI", "completion_result", "outcome_of"]


def outcome_of(exc: openai.OpenAIError) -> str | None:
    """The engine outcome of an OpenAI SDK error the SDK's own classification would miss (its
    timeout is no ``TimeoutError``), or None to leave it to ``classify_exception``: 429 is
    ``rate_limited`` and a 5xx ``error`` by status code already."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "error"
    return None


class _OpenAIFailure(ProviderError):
    """An OpenAI error with its outcome, re-raised as the original when the run fails."""

    def __init__(self, outcome: str, original: openai.OpenAIError) -> None:
        super().__init__(outcome, str(original))
        self.original = original


def completion_result(completion: ChatCompletion) -> CallResult:
    """A chat completion as ``run()`` takes it: the completion and its token usage."""
    usage = completion.usage
    return CallResult(
        completion,
        tokens_in=usage.prompt_tokens if usage is not None else 0,
        tokens_out=usage.completion_tokens if usage is not None else 0,
    )


class _Clients:
    def __init__(self, client: Any, clients: Mapping[str, Any] | None) -> None:
        self.default = client
        self.by_provider = dict(clients or {})

    def of(self, attempt: Attempt) -> Any:
        """The client of the attempt's provider, else the default one."""
        return self.by_provider.get(attempt.provider, self.default)


def _split(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "model" in kwargs:
        raise TypeError("the policy picks the model: pass task_type (and routing fields), not model")
    if kwargs.get("stream"):
        raise TypeError("streaming is not routed yet: call the OpenAI client directly for streams")
    return kwargs


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
                outcome = outcome_of(exc)
                if outcome is None:
                    raise
                raise _OpenAIFailure(outcome, exc) from exc
            return completion_result(completion)

        try:
            return self.router.run(task_type, call, validate=validate, attributes=attributes, **dict(routing or {}))
        except _OpenAIFailure as failure:
            raise failure.original from None


class _Chat:
    def __init__(self, owner: RoutedOpenAI) -> None:
        self.completions = _Completions(owner)


class _Completions:
    def __init__(self, owner: RoutedOpenAI) -> None:
        self._owner = owner

    def create(self, *, task_type: str, messages: Any, **kwargs: Any) -> ChatCompletion:
        """``client.chat.completions.create`` with ``task_type`` instead of ``model`` (the
        ``RoutedOpenAI.run`` arguments ``validate``, ``attributes`` and ``routing`` also apply)."""
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
                outcome = outcome_of(exc)
                if outcome is None:
                    raise
                raise _OpenAIFailure(outcome, exc) from exc
            return completion_result(completion)

        try:
            return await self.router.run(
                task_type, call, validate=validate, attributes=attributes, **dict(routing or {})
            )
        except _OpenAIFailure as failure:
            raise failure.original from None


class _AsyncChat:
    def __init__(self, owner: AsyncRoutedOpenAI) -> None:
        self.completions = _AsyncCompletions(owner)


class _AsyncCompletions:
    def __init__(self, owner: AsyncRoutedOpenAI) -> None:
        self._owner = owner

    async def create(self, *, task_type: str, messages: Any, **kwargs: Any) -> ChatCompletion:
        """``AsyncOpenAI.chat.completions.create`` with ``task_type`` instead of ``model``."""
        result = await self._owner.run(task_type, messages=messages, **kwargs)
        response: ChatCompletion = result.response
        return response
