"""Decision-log upload: the bounded queue, batches (from memory or the spool), their POST
bodies, the answers (delivered, retried with backoff or ``Retry-After``, split on 413, dropped on
other 4xx), and spilling to the spool when the queue is full or the client closes."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._spool import Segment
from ._state import CoreState, logger
from ._wire import MAX_BATCH_BYTES, loads_json, parse_retry_after

BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


@dataclass(slots=True, eq=False)
class Batch:
    """Records sent in one POST; ``segment`` when they come from the spool."""

    records: list[dict[str, Any]]
    segment: Segment | None = None
    abandoned: bool = False


class Uploads(CoreState):
    """The upload part of a client core; the shells move the bytes and wait."""

    queue: deque[dict[str, Any]]
    pending: deque[Batch]
    inflight: set[Batch]
    retry_at: float
    failures: int

    def enqueue(self, record: dict[str, Any]) -> bool:
        """Queue a record. Return True when a batch is full and the sender should wake."""
        overflow: list[dict[str, Any]] | None = None
        with self.lock:
            queue = self.queue
            if len(queue) >= self.queue_size:
                # Spill a whole chunk so the fsync is paid once per chunk, not per record.
                take = min(self.batch_size, len(queue)) if self.spool else 1
                overflow = [queue.popleft() for _ in range(take)]
            queue.append(record)
            self.counts.recorded += 1
            full = len(queue) >= self.batch_size
        if overflow:
            self.spill(overflow, reason="queue full")
        return full

    def next_batch(self, now: float, *, include_spool: bool = True) -> Batch | None:
        """The next batch due for sending, or None (nothing to send, or backing off)."""
        with self.lock:
            if now < self.retry_at:
                return None
            if self.pending:
                batch = self.pending.popleft()
            elif self.queue:
                queue = self.queue
                batch = Batch([queue.popleft() for _ in range(min(self.batch_size, len(queue)))])
            else:
                batch = None
            if batch is not None:
                self.inflight.add(batch)
                return batch
        if include_spool and self.spool is not None:
            segment, corrupt = self.spool.claim_oldest()
            if corrupt:
                with self.lock:
                    self.counts.dropped += corrupt
                self.warn_once("spool-corrupt", "dropped %d unreadable spooled records", corrupt)
            if segment is not None:
                batch = Batch(segment.records, segment)
                with self.lock:
                    self.inflight.add(batch)
                return batch
        return None

    def next_send(
        self, now: float, deadline: float | None, timeout: float, *, include_spool: bool
    ) -> tuple[Batch, bytes, float] | None:
        """The next batch due, its POST body and the HTTP timeout left for it; None to stop.

        Stops at ``deadline`` (None: no deadline), and when nothing is due.
        """
        while deadline is None or now < deadline:
            batch = self.next_batch(now, include_spool=include_spool)
            if batch is None:
                return None
            body = self.encode(batch)
            if body is not None:
                if deadline is not None:
                    timeout = max(min(timeout, deadline - now), 0.001)
                return batch, body, timeout
        return None

    def flush_wait(self, now: float, deadline: float, *, include_spool: bool) -> float | None:
        """Seconds a flush sleeps before its next round of sends; None when the flush is over.

        Over means nothing is left (see ``flushed()``), or what is left cannot go before
        ``deadline``.
        """
        if self.flushed(include_spool=include_spool):
            return None
        wait = self.wait_hint(now)
        if wait is None and self._spool_left(include_spool):
            wait = max(self.retry_at - now, 0.0)
        if wait is None or now + wait >= deadline:
            return None
        return wait

    def flushed(self, *, include_spool: bool) -> bool:
        """True when nothing is left in memory and, with ``include_spool``, in the spool."""
        return self.idle() and not self._spool_left(include_spool)

    def _spool_left(self, include_spool: bool) -> bool:
        return include_spool and self.spool is not None and self.spool.has_segments()

    def upload_crashed(self) -> None:
        """After an unexpected error in a background upload round: try again one interval on."""
        logger.error("decision upload crashed; retrying later")
        with self.lock:
            self.retry_at = self.clock() + self.flush_interval

    def encode(self, batch: Batch) -> bytes | None:
        """The POST body for a batch; None when it was too large and got split instead."""
        body = json.dumps({"decisions": batch.records}, separators=(",", ":"), default=str).encode()
        if len(body) > MAX_BATCH_BYTES:
            self._split(batch, "over 5 MB")
            return None
        return body

    def wait_hint(self, now: float) -> float | None:
        """Seconds until a retry is due, 0 when something can go now, None when idle."""
        with self.lock:
            if self.retry_at > now and (self.pending or self.queue):
                return self.retry_at - now
            if self.pending or self.queue:
                return 0.0
        return None

    def idle(self) -> bool:
        """True when nothing is queued, pending or in flight in memory."""
        with self.lock:
            return not (self.queue or self.pending or self.inflight)

    def sent(self, batch: Batch, status: int, headers: Mapping[str, str], content: bytes, now: float) -> str:
        """Apply the answer to a POST of ``batch``. Return "delivered", "retry", "split", "drop"."""
        if batch.abandoned:
            return "abandoned"
        if 200 <= status < 300:
            counted = self._count_results(batch, content)
            if counted is None:
                self.warn_once(
                    "malformed-post", "decision upload answered %d with an unreadable body; retrying the batch", status
                )
                self._retry(batch, self._backoff(), now)
                return "retry"
            accepted, duplicates, rejected = counted
            with self.lock:
                self.inflight.discard(batch)
                self.counts.sent += accepted
                self.counts.duplicates += duplicates
                self.counts.rejected += rejected
                self.failures = 0
                self.retry_at = 0.0
            self._finish_segment(batch)
            return "delivered"
        if status == 413:
            self._split(batch, "413")
            return "split"
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"), time.time())
            self._retry(batch, wait if wait is not None else self._backoff(), now)
            return "retry"
        if status == 408 or status >= 500 or status < 200 or 300 <= status < 400:
            self._retry(batch, self._backoff(), now)
            return "retry"
        self.warn_once(
            ("post-status", status),
            "decision upload answered %d: dropping batches this status rejects (%d records now)",
            status,
            len(batch.records),
        )
        with self.lock:
            self.inflight.discard(batch)
            self.counts.rejected += len(batch.records)
            self.failures = 0
            self.retry_at = 0.0
        self._finish_segment(batch)
        return "drop"

    def send_failed(self, batch: Batch, exc: BaseException, now: float) -> str:
        if batch.abandoned:
            return "abandoned"
        self.warn_once(("post-error", type(exc)), "decision upload failed (%s), will retry", type(exc).__name__)
        logger.debug("decision upload failed: %r", exc)
        self._retry(batch, self._backoff(), now)
        return "retry"

    def _count_results(self, batch: Batch, content: bytes) -> tuple[int, int, int] | None:
        try:
            body = loads_json(content)
        except ValueError:
            return None
        if not isinstance(body, dict):
            return None
        results = body.get("results")
        if (
            isinstance(results, list)
            and len(results) == len(batch.records)
            and all(isinstance(r, dict) for r in results)
        ):
            accepted = duplicates = rejected = 0
            for result in results:
                status = result.get("status")
                if status == "accepted":
                    accepted += 1
                elif status == "duplicate":
                    duplicates += 1
                else:
                    rejected += 1
                    errors = result.get("errors")
                    fields = tuple(sorted(map(str, errors))) if isinstance(errors, dict) else ()
                    self.warn_once(("rejected", fields), "the server rejected a decision record: %s", errors)
            return accepted, duplicates, rejected
        counts = [
            c
            for k in ("accepted", "duplicates", "rejected")
            if isinstance(c := body.get(k), int) and not isinstance(c, bool) and c >= 0
        ]
        if len(counts) == 3 and sum(counts) == len(batch.records):
            return counts[0], counts[1], counts[2]
        return None

    def _backoff(self) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**failures))."""
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(self.failures, 16)))
        return self.rng.uniform(0.0, ceiling)

    def _retry(self, batch: Batch, delay: float, now: float) -> None:
        with self.lock:
            self.inflight.discard(batch)
            self.pending.appendleft(batch)
            self.failures += 1
            self.retry_at = now + delay
            self.counts.retried += 1

    def _split(self, batch: Batch, why: str) -> None:
        records = batch.records
        with self.lock:
            self.inflight.discard(batch)
        if len(records) <= 1:
            self.warn_once(("too-large", why), "dropping a decision record the server refuses as too large (%s)", why)
            with self.lock:
                self.counts.rejected += len(records)
            self._finish_segment(batch)
            return
        middle = len(records) // 2
        halves = [records[:middle], records[middle:]]
        if batch.segment is not None and self.spool is not None:
            # Halves of a spooled segment go back to disk, so a crash now loses nothing.
            for half in halves:
                self.spool.write(half, len(half))
            self.spool.finish(batch.segment)
            return
        with self.lock:
            for half in reversed(halves):
                self.pending.appendleft(Batch(half))

    def _finish_segment(self, batch: Batch) -> None:
        if batch.segment is not None and self.spool is not None:
            self.spool.finish(batch.segment)

    def spill(self, records: list[dict[str, Any]], *, reason: str) -> None:
        """Write records to the spool, or drop and count them when there is no spool."""
        if not records:
            return
        if self.spool is None:
            with self.lock:
                self.counts.dropped += len(records)
            self.warn_once(("drop", reason), "dropping decision records (%s) and no spool_dir is set", reason)
            return
        try:
            written, dropped = self.spool.write(records, self.batch_size)
        except OSError as exc:
            with self.lock:
                self.counts.dropped += len(records)
            self.warn_once(("spool-error", type(exc)), "cannot write the decision spool: %s", exc)
            return
        with self.lock:
            self.counts.spooled += written
            self.counts.dropped += dropped

    def requeue_inflight(self) -> None:
        """Put batches whose send was interrupted (a cancelled task) back at the front."""
        with self.lock:
            for batch in self.inflight:
                self.pending.appendleft(batch)
            self.inflight.clear()

    def drain_to_spool(self) -> None:
        """Move everything held in memory to the spool (close, exit): nothing stays in RAM."""
        with self.lock:
            batches = list(self.pending) + list(self.inflight)
            self.pending.clear()
            self.inflight.clear()
            records = list(self.queue)
            self.queue.clear()
        memory: list[dict[str, Any]] = []
        for batch in batches:
            batch.abandoned = True
            if batch.segment is not None and self.spool is not None:
                self.spool.release(batch.segment)
            else:
                memory.extend(batch.records)
        memory.extend(records)
        self.spill(memory, reason="closing")
