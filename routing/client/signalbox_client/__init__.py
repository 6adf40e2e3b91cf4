"""Signalbox client SDK: fetch a routing policy, decide locally, log decisions back.

Imports only the standard library, httpx and ``signalbox_client.engine``. See ``docs/client.md``.
"""

from signalbox_client.engine import OUTCOMES, NextStep, Request, Step

from ._aio import AsyncRoutingClient
from ._decisions import ClientDecision
from ._run import classify_exception
from ._stream import STREAM_END_ATTRIBUTE, AsyncRunStream, RunStream
from ._sync import RoutingClient
from ._types import (
    Attempt,
    AttemptRecord,
    CallResult,
    ProviderError,
    RunResult,
    SignalboxError,
    SignalboxNotReady,
    Stats,
)
from ._wire import SDK_VERSION

__all__ = [
    "OUTCOMES",
    "SDK_VERSION",
    "STREAM_END_ATTRIBUTE",
    "AsyncRoutingClient",
    "AsyncRunStream",
    "Attempt",
    "AttemptRecord",
    "CallResult",
    "ClientDecision",
    "NextStep",
    "ProviderError",
    "Request",
    "RoutingClient",
    "RunResult",
    "RunStream",
    "SignalboxError",
    "SignalboxNotReady",
    "Stats",
    "Step",
    "classify_exception",
]
