"""LiteLLM and Signalbox (``pip install 'signalbox-client[litellm]'``).

- ``SignalboxLogger``: a LiteLLM custom callback (``litellm.callbacks = [SignalboxLogger(client)]``)
  that logs every call LiteLLM makes, sync or async, streamed or not, succeeded or failed, as a
  decision record: the model and provider LiteLLM called, its tokens, latency and outcome, and the
  route and task type from the call's ``metadata={"signalbox": {...}}``.
- ``RoutedRouter`` / ``AsyncRoutedRouter``: a ``litellm.Router`` call whose model group is picked
  by the policy, with the engine's cascade and fallbacks (the Router's own retries and fallbacks
  are turned off for these calls), every attempt logged; ``stream=True`` streams.

See docs/integrations/litellm.md. Importing ``signalbox_client`` never imports this module (nor
litellm).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, overload

import litellm
from litellm.integrations.custom_logger import CustomLogger

from signalbox_client.engine import Policy

from ._aio import AsyncRoutingClient
from ._base import ClientBase
from ._chat import chunk_usage, completion_result, stream_arguments, usage_only
from ._decisions import ClientDecision
from ._run import classify_exception, outcome_of_status
from ._stream import AsyncRunStream, RunStream
from ._sync import RoutingClient
from ._types import Attempt, CallResult, RunResult, SignalboxNotReady

__all__ = ["DEFAULT_TASK_TYPE", "METADATA_KEY", "AsyncRoutedRouter", "RoutedRouter", "SignalboxLogger"]

logger = logging.getLogger("signalbox.client")

# The key of a call's `metadata` that Signalbox reads: {"task_type", "route", "tier", "attributes",
# "routing" (the request fields the policy routes on)}; RoutedRouter adds "routed" to its own calls.
METADATA_KEY = "signalbox"
# The task type of a call whose metadata names none: the policy routes it by its default route.
DEFAULT_TASK_TYPE = "litellm"
# A call's event id is uuid5(CALL_NAMESPACE, LiteLLM's call id): a call reported twice is one record.
CALL_NAMESPACE = uuid.UUID("0c6f7d0e-3b8e-4f4e-9d5a-6a2f1c9b7e21")
SEEN_CALLS = 10_000  # call ids remembered to log each call once in this process
REASON = {"source": "litellm"}  # a logged call's reason: LiteLLM picked the model, not the policy


class SignalboxLogger(CustomLogger):
    """Every LiteLLM call as a Signalbox decision record (give it to ``litellm.callbacks``).

    ``client`` is a ``RoutingClient`` or ``AsyncRoutingClient`` with the policy loaded: each call is
    decided for its task type (``metadata={"signalbox": {"task_type": ...}}``, else
    ``task_type``) to find its route and the policy version, then recorded with the model LiteLLM
    called. ``send_cost=True`` sends LiteLLM's own ``response_cost``; by default the server
    prices the tokens from the catalog. Calls made through ``RoutedRouter`` are logged there, not
    here. Logging never raises into LiteLLM; a call logged while no policy is loaded is dropped and
    counted in ``dropped``.
    """

    def __init__(
        self,
        client: ClientBase,
        *,
        task_type: str = DEFAULT_TASK_TYPE,
        send_cost: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.client = client
        self.task_type = task_type
        self.send_cost = send_cost
        # LiteLLM keeps one logger per class and public str/bool/int attributes: this one makes
        # every instance its own (two clients for two policies both log).
        self.instance = uuid.uuid4().hex
        self._dropped = 0
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, int] = OrderedDict()  # call id -> 1; request id -> attempts so far

    @property
    def dropped(self) -> int:
        """Calls not logged because no policy was loaded yet."""
        return self._dropped

    # LiteLLM calls these by keyword: the parameter names are its own.
    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, response_obj, start_time, end_time, failed=False)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, response_obj, start_time, end_time, failed=True)

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, response_obj, start_time, end_time, failed=False)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self._log(kwargs, response_obj, start_time, end_time, failed=True)

    def _log(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any, *, failed: bool) -> None:
        try:
            self._record(kwargs if isinstance(kwargs, Mapping) else {}, response_obj, start_time, end_time, failed)
        except Exception:  # a logging callback must never break the application's LLM call
            logger.exception("logging a LiteLLM call as a decision failed")

    def _record(self, kwargs: Mapping[str, Any], response_obj: Any, start: Any, end: Any, failed: bool) -> None:
        payload = kwargs.get("standard_logging_object")
        payload = payload if isinstance(payload, Mapping) else {}
        ours = signalbox_metadata(kwargs)
        if ours.get("routed"):
            return  # RoutedRouter logged this attempt itself
        call_id = str(kwargs.get("litellm_call_id") or payload.get("id") or uuid.uuid4())
        request_id = str(payload.get("trace_id") or kwargs.get("litellm_trace_id") or call_id)
        attempt = self._first_time(call_id, request_id)
        if attempt is None:
            return
        decision = self._decide(ours)
        if decision is None:
            return
        provider = str(payload.get("custom_llm_provider") or kwargs.get("custom_llm_provider") or decision.provider)
        model = _called_model(kwargs, payload, provider)
        tier = _int(ours.get("tier")) or _tier_in(decision, model) or decision.tier
        tokens = _tokens(payload, response_obj)
        cost = payload.get("response_cost") if self.send_cost and not failed else None
        started_at, latency_ms = _times(start, end, payload)
        attributes = ours.get("attributes")
        self.client.record(
            decision,
            outcome=_outcome(kwargs, payload) if failed else "ok",
            latency_ms=latency_ms,
            attempt=attempt,
            step=Attempt(model, provider, tier, attempt, "initial", decision.route, request_id, dict(REASON)),
            tokens_in=tokens[0],
            tokens_out=tokens[1],
            cost_usd=cost if isinstance(cost, int | float) else None,
            attributes=attributes if isinstance(attributes, Mapping) else None,
            started_at=started_at,
            request_id=request_id,
            event_id=str(uuid.uuid5(CALL_NAMESPACE, call_id)),
        )

    def _first_time(self, call_id: str, request_id: str) -> int | None:
        """The attempt number of this call within its request (LiteLLM's trace id ties a call's
        retries and fallbacks together), or None when the call was logged already."""
        with self._lock:
            seen = self._seen
            key = "call:" + call_id
            if key in seen:
                return None
            seen[key] = 1
            attempts = seen.get("request:" + request_id, 0) + 1
            seen["request:" + request_id] = attempts
            seen.move_to_end("request:" + request_id)
            while len(seen) > 2 * SEEN_CALLS:
                seen.popitem(last=False)
            return attempts

    def _decide(self, ours: Mapping[str, Any]) -> ClientDecision | None:
        task_type = str(ours.get("task_type") or self.task_type)
        routing = ours.get("routing")
        try:
            try:
                decision = self.client.decide(task_type, **(dict(routing) if isinstance(routing, Mapping) else {}))
            except TypeError:  # a routing field the engine does not know: route on the task type alone
                decision = self.client.decide(task_type)
        except SignalboxNotReady:
            self._dropped += 1
            logger.warning("no policy loaded yet: a LiteLLM call was not logged (%d so far)", self._dropped)
            return None
        route = ours.get("route")
        if isinstance(route, str) and route:
            decision = dataclasses.replace(decision, plan=dataclasses.replace(decision.plan, route=route))
        return decision


def signalbox_metadata(kwargs: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``metadata["signalbox"]`` mapping of a LiteLLM call's logging kwargs, or an empty one."""
    params = kwargs.get("litellm_params")
    candidates = [params.get("metadata") if isinstance(params, Mapping) else None, kwargs.get("metadata")]
    for metadata in candidates:
        if isinstance(metadata, Mapping) and isinstance(metadata.get(METADATA_KEY), Mapping):
            ours: Mapping[str, Any] = metadata[METADATA_KEY]
            return ours
    return {}


def _called_model(kwargs: Mapping[str, Any], payload: Mapping[str, Any], provider: str) -> str:
    """The model LiteLLM called, as the provider names it (without LiteLLM's ``provider/`` prefix)."""
    model = kwargs.get("model")
    if isinstance(model, str) and model:
        return model  # LiteLLM has split the provider off already
    model = str(payload.get("model") or "unknown")
    prefix = provider + "/"
    return model[len(prefix) :] if model.startswith(prefix) else model


def _tier_in(decision: ClientDecision, model: str) -> int | None:
    """The tier of ``model`` in the decision's route (a tier's model or one of its fallbacks)."""
    compiled = decision.compiled
    route = compiled.routes.get(decision.route) if isinstance(compiled, Policy) else None
    if route is None:
        return None
    for tier in route.tiers:
        if tier.model.id == model or any(fallback.id == model for fallback in tier.fallbacks):
            return tier.index
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _tokens(payload: Mapping[str, Any], response_obj: Any) -> tuple[int, int]:
    tokens_in, tokens_out = payload.get("prompt_tokens"), payload.get("completion_tokens")
    if isinstance(tokens_in, int) and isinstance(tokens_out, int):
        return tokens_in, tokens_out
    return chunk_usage(response_obj) or (0, 0)


def _times(start: Any, end: Any, payload: Mapping[str, Any]) -> tuple[float | None, float]:
    """(the call's start in epoch seconds, its latency in ms) from LiteLLM's start and end times."""
    if isinstance(start, datetime) and isinstance(end, datetime):
        return start.timestamp(), max((end - start).total_seconds() * 1000.0, 0.0)
    began, ended = payload.get("startTime"), payload.get("endTime")
    if isinstance(began, int | float) and isinstance(ended, int | float):
        return float(began), max((ended - began) * 1000.0, 0.0)
    return None, 0.0


def _outcome(kwargs: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """The outcome of a failed call: from its exception, else from LiteLLM's error code."""
    exc = kwargs.get("exception")
    if isinstance(exc, BaseException):
        return classify_exception(exc)
    info = payload.get("error_information")
    code = info.get("error_code") if isinstance(info, Mapping) else None
    try:
        return outcome_of_status(int(str(code)))
    except ValueError:
        return "error"


# -- the Router, routed by the policy -----------------------------------------------------------------


class _RouterCalls:
    """What the sync and async routed Routers share: the model group of each attempt and the
    arguments of its Router call."""

    def __init__(self, router: litellm.Router, models: Mapping[str, str] | None) -> None:
        self.router = router
        self.models = dict(models or {})

    def group(self, attempt: Attempt) -> str:
        """The Router model group (``model_name``) of the attempt's model: ``models`` maps a catalog
        model id to it; by default the group is named after the model."""
        return self.models.get(attempt.model, attempt.model)

    def arguments(self, attempt: Attempt, messages: Any, call: Mapping[str, Any]) -> dict[str, Any]:
        arguments = dict(call)
        metadata = dict(arguments.pop("metadata", None) or {})
        metadata[METADATA_KEY] = {
            **dict(metadata.get(METADATA_KEY) or {}),
            "routed": True,
            "request_id": attempt.request_id,
            "attempt": attempt.attempt,
        }
        # The policy's fallbacks and cascade decide what happens after a failure, not the Router's.
        arguments.setdefault("num_retries", 0)
        arguments.setdefault("fallbacks", [])
        return {**arguments, "model": self.group(attempt), "messages": messages, "metadata": metadata}


def _split(call: dict[str, Any], *, stream: bool = False) -> dict[str, Any]:
    if "model" in call:
        raise TypeError("the policy picks the model: pass task_type (and routing fields), not model")
    if not stream and call.get("stream"):
        raise TypeError("run() returns a whole response: use stream() (or completion(stream=True)) for streams")
    call.pop("stream", None)
    return call


class RoutedRouter:
    """``litellm.Router.completion`` with the model group picked by a Signalbox policy.

    ``models`` maps a catalog model id of the policy to the Router's ``model_name`` serving it
    (default: the same name). Each call is one ``RoutingClient.run()``: the engine's cascade and
    fallbacks move between model groups, every attempt is logged with its usage, and the Router's
    own ``num_retries`` and ``fallbacks`` are 0 and none for these calls unless given.
    """

    def __init__(self, client: RoutingClient, router: litellm.Router, *, models: Mapping[str, str] | None = None):
        self.client = client
        self._calls = _RouterCalls(router, models)

    @property
    def router(self) -> litellm.Router:
        return self._calls.router

    def run(
        self,
        task_type: str,
        *,
        messages: Any,
        validate: Callable[[Any], bool] | None = None,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **call: Any,
    ) -> RunResult:
        """One routed completion: the ``RunResult`` (``response`` the last ``ModelResponse``).
        ``routing`` holds the request fields the policy routes on, ``call`` the other arguments of
        ``Router.completion``. When no attempt succeeds, the last LiteLLM error is raised."""
        call = _split(call)

        def attempt_call(attempt: Attempt) -> CallResult:
            return completion_result(self.router.completion(**self._calls.arguments(attempt, messages, call)))

        return self.client.run(task_type, attempt_call, validate=validate, attributes=attributes, **dict(routing or {}))

    def stream(
        self,
        task_type: str,
        *,
        messages: Any,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **call: Any,
    ) -> RunStream:
        """One routed, streamed completion: a ``RunStream`` of LiteLLM's chunks, unchanged. A
        failure before the first chunk falls back as the policy says; the attempt that streamed is
        logged with the final chunk's usage when the stream ends, errs or is closed."""
        call, added = stream_arguments(_split(call, stream=True))

        def attempt_call(attempt: Attempt) -> Any:
            return self.router.completion(stream=True, **self._calls.arguments(attempt, messages, call))

        return self.client.run_stream(
            task_type,
            attempt_call,
            usage=chunk_usage,
            hide=usage_only if added else None,
            attributes=attributes,
            **dict(routing or {}),
        )

    @overload
    def completion(self, *, task_type: str, messages: Any, stream: Literal[True], **kwargs: Any) -> RunStream: ...
    @overload
    def completion(self, *, task_type: str, messages: Any, stream: Literal[False] = False, **kwargs: Any) -> Any: ...
    def completion(self, *, task_type: str, messages: Any, stream: bool = False, **kwargs: Any) -> Any:
        """``Router.completion`` with ``task_type`` instead of ``model``: the last ``ModelResponse``,
        or with ``stream=True`` a ``RunStream`` (``run()`` and ``stream()`` arguments apply)."""
        if stream:
            return self.stream(task_type, messages=messages, **kwargs)
        return self.run(task_type, messages=messages, **kwargs).response


class AsyncRoutedRouter:
    """``litellm.Router.acompletion`` with the model group picked by a Signalbox policy (see
    ``RoutedRouter``), over an ``AsyncRoutingClient``."""

    def __init__(self, client: AsyncRoutingClient, router: litellm.Router, *, models: Mapping[str, str] | None = None):
        self.client = client
        self._calls = _RouterCalls(router, models)

    @property
    def router(self) -> litellm.Router:
        return self._calls.router

    async def run(
        self,
        task_type: str,
        *,
        messages: Any,
        validate: Callable[[Any], bool] | None = None,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **call: Any,
    ) -> RunResult:
        """``RoutedRouter.run``, awaited."""
        call = _split(call)

        async def attempt_call(attempt: Attempt) -> CallResult:
            response = await self.router.acompletion(**self._calls.arguments(attempt, messages, call))
            return completion_result(response)

        return await self.client.run(
            task_type, attempt_call, validate=validate, attributes=attributes, **dict(routing or {})
        )

    async def stream(
        self,
        task_type: str,
        *,
        messages: Any,
        attributes: Mapping[str, Any] | None = None,
        routing: Mapping[str, Any] | None = None,
        **call: Any,
    ) -> AsyncRunStream:
        """``RoutedRouter.stream``, awaited: an ``AsyncRunStream`` of the chunks."""
        call, added = stream_arguments(_split(call, stream=True))

        async def attempt_call(attempt: Attempt) -> Any:
            return await self.router.acompletion(stream=True, **self._calls.arguments(attempt, messages, call))

        return await self.client.run_stream(
            task_type,
            attempt_call,
            usage=chunk_usage,
            hide=usage_only if added else None,
            attributes=attributes,
            **dict(routing or {}),
        )

    @overload
    async def acompletion(
        self, *, task_type: str, messages: Any, stream: Literal[True], **kwargs: Any
    ) -> AsyncRunStream: ...
    @overload
    async def acompletion(
        self, *, task_type: str, messages: Any, stream: Literal[False] = False, **kwargs: Any
    ) -> Any: ...
    async def acompletion(self, *, task_type: str, messages: Any, stream: bool = False, **kwargs: Any) -> Any:
        """``Router.acompletion`` with ``task_type`` instead of ``model``."""
        if stream:
            return await self.stream(task_type, messages=messages, **kwargs)
        result = await self.run(task_type, messages=messages, **kwargs)
        return result.response
