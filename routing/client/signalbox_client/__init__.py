"""Signalbox client SDK: fetch a routing policy, decide locally, log decisions back.

Imports only the standard library, httpx and ``signalbox_client.engine``. See ``docs/client.md``.
"""

from signalbox_client.engine import OUTCOMES, NextStep, Request, Step

from ._aio import AsyncRoutingClient
from ._decisions import ClientDecision
from ._run import classify_exception
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
    "AsyncRoutingClient",
    "Attempt",
    "AttemptRecord",
    "CallResult",
    "ClientDecision",
    "NextStep",
    "ProviderError",
    "Request",
    "RoutingClient",
    "RunResult",
    "SignalboxError",
    "SignalboxNotReady",
    "Stats",
    "Step",
    "classify_exception",
]
