"""Bounds on the work a caller's own document can make the control plane do.

Preview, validate and what-if run the engine or a replay on a document the caller sends, so each
runs inside `bounded()`:

- **A slot.** At most API_COMPUTE_CONCURRENCY of them compute at once on the installation
  (PostgreSQL session advisory locks, so every web worker of every host counts; one process's
  semaphore on SQLite). The rest answer 429 with Retry-After at once instead of waiting, so a
  flood of them never holds every web worker and client policy fetches always find a free one.
- **A time budget** of API_COMPUTE_TIME_BUDGET_MS. Past it the computation stops and the caller
  gets 422 naming the field whose size made it long. The stop is an exception raised by a
  SIGALRM timer, and only inside `interruptible()` sections: pure computations (validating,
  compiling, deciding, replaying) that hold no connection, lock or cache mid-call. Outside them
  (a query, a cache read) the expiry is noted and raised at the next section or check. Where no
  timer can be used (not the main thread, as under the development server's threads, or a timer
  already armed by someone else), the budget is checked at the sections' edges only.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import ClassVar

from django.conf import settings
from django.db import connection
from rest_framework import status

from controlplane.errors import DomainError

# The advisory-lock key space of compute slots (the first of the two int4 keys).
_LOCK_CLASS = 0x5B0C
RETRY_AFTER_SECONDS = 1


class ComputeBusy(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "busy"
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ComputeTimeout(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "time_budget"


class _Budget:
    """The running computation's deadline (one per thread)."""

    def __init__(self, seconds: float, what: str, field: str) -> None:
        self.seconds, self.what, self.field = seconds, what, field
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self.interruptible = False

    def error(self) -> ComputeTimeout:
        ms = round(self.seconds * 1000)
        return ComputeTimeout(
            f"The {self.what} took longer than its time budget of {ms:,} ms and was stopped.",
            {self.field: [f"too much to compute within {ms:,} ms (API_COMPUTE_TIME_BUDGET_MS): send less"]},
        )

    def check(self) -> None:
        if self.expired or time.monotonic() > self.deadline:
            self.expired = True
            raise self.error()


_local = threading.local()


def _current() -> _Budget | None:
    return getattr(_local, "budget", None)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    budget = _current()
    if budget is None:
        return
    budget.expired = True
    if budget.interruptible:
        budget.interruptible = False  # raised once; the section's exit must not raise again
        raise budget.error()


@contextmanager
def _time_budget(what: str, field: str) -> Iterator[_Budget]:
    seconds = settings.API_COMPUTE_TIME_BUDGET_MS / 1000
    main = threading.current_thread() is threading.main_thread()
    timer = main and hasattr(signal, "setitimer") and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    budget = _Budget(seconds, what, field)
    outer, _local.budget = _current(), budget
    previous = None
    if timer:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield budget
    finally:
        if timer:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        _local.budget = outer


@contextmanager
def interruptible() -> Iterator[None]:
    """A pure computation the time budget may stop midway (no-op outside `bounded()`)."""
    budget = _current()
    if budget is None:
        yield
        return
    budget.check()
    budget.interruptible = True
    try:
        yield
    finally:
        budget.interruptible = False
    budget.check()


_semaphores: dict[int, threading.BoundedSemaphore] = {}
_semaphores_lock = threading.Lock()


@contextmanager
def _slot(what: str) -> Iterator[None]:
    limit = settings.API_COMPUTE_CONCURRENCY

    def busy() -> ComputeBusy:
        return ComputeBusy(
            f"The installation is already running {limit} preview, validation or what-if "
            f"computation{'s' if limit != 1 else ''} at once; retry in {RETRY_AFTER_SECONDS} s.",
            {"(request)": [f"{what}: every compute slot is busy (API_COMPUTE_CONCURRENCY = {limit})"]},
        )

    if connection.vendor != "postgresql":
        with _semaphores_lock:
            semaphore = _semaphores.setdefault(limit, threading.BoundedSemaphore(limit))
        if not semaphore.acquire(blocking=False):
            raise busy()
        try:
            yield
        finally:
            semaphore.release()
        return
    held = None
    with connection.cursor() as cursor:
        for slot in range(limit):
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_CLASS, slot])
            if cursor.fetchone()[0]:
                held = slot
                break
    if held is None:
        raise busy()
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LOCK_CLASS, held])
        except Exception:
            connection.close()


@contextmanager
def bounded(what: str, *, field: str) -> Iterator[None]:
    """Run one caller-driven computation (`what`, e.g. "preview") in a compute slot and within
    the time budget; a timeout names `field`, the input whose size made it long."""
    if _current() is not None:  # nested (what-if validates the document): the outer bound holds
        yield
        return
    with _slot(what), _time_budget(what, field):
        yield
