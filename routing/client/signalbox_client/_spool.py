"""The disk spool: decision records that could not be sent yet, kept across restarts.

A spool is a directory of JSON-lines segment files. Each segment is written once, completely
(temp file, fsync, rename), so a crash leaves either the whole segment or none of it. Segment names
sort by creation time and carry their record count, so the oldest can be dropped (and counted)
without being read. A sender claims a segment by renaming it; the rename is atomic, so two
processes sharing the directory never send the same segment at the same time. Records keep their
event ids, so a segment sent twice after a crash is counted once by the server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("signalbox.client")

_SEGMENT = re.compile(r"^seg-(\d+)-(\d+)-(\d+)-(\d+)\.jsonl$")
_CLAIMED = re.compile(r"^(seg-\d+-\d+-\d+-\d+\.jsonl)\.sending-(\d+)$")
_sequence = itertools.count()


@dataclass(frozen=True, slots=True)
class Segment:
    """A claimed spool segment: its records and the file that holds them while they are sent."""

    path: Path
    records: list[dict[str, Any]]


def _count_of(name: str) -> int:
    match = _SEGMENT.match(name)
    return int(match.group(4)) if match else 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Spool:
    """An append-only directory of record segments, bounded by ``max_bytes``."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max(int(max_bytes), 1)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.release_stale_claims()

    # -- writing ---------------------------------------------------------------------------

    def write(self, records: Sequence[dict[str, Any]], chunk: int) -> tuple[int, int]:
        """Write ``records`` as segments of at most ``chunk`` records.

        Return ``(written, dropped)``: records now on disk, and records dropped to keep the spool
        within ``max_bytes`` (the oldest go first, including older segments already on disk).
        """
        lines = [json.dumps(record, separators=(",", ":")).encode() + b"\n" for record in records]
        dropped = 0
        total = sum(len(line) for line in lines)
        while lines and total > self.max_bytes:
            total -= len(lines.pop(0))
            dropped += 1
        written = 0
        for start in range(0, len(lines), max(chunk, 1)):
            part = lines[start : start + chunk]
            self._write_segment(part)
            written += len(part)
        dropped += self._enforce_capacity()
        return written, dropped

    def _write_segment(self, lines: list[bytes]) -> None:
        name = f"seg-{time.time_ns():020d}-{next(_sequence):08d}-{os.getpid()}-{len(lines)}.jsonl"
        final = self.directory / name
        temp = self.directory / f".{name}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
            temp.replace(final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._fsync_directory()

    def _fsync_directory(self) -> None:
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _enforce_capacity(self) -> int:
        entries = self._segments()
        total = sum(size for _, size in entries)
        dropped = 0
        for path, size in entries:
            if total <= self.max_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                continue  # another process claimed or dropped it first
            total -= size
            dropped += _count_of(path.name)
        if dropped:
            logger.warning("decision spool over %d bytes: dropped %d oldest records", self.max_bytes, dropped)
        return dropped

    # -- reading ---------------------------------------------------------------------------

    def _segments(self) -> list[tuple[Path, int]]:
        """Unclaimed segments, oldest first, with their sizes."""
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            if _SEGMENT.match(entry.name):
                try:
                    found.append((Path(entry.path), entry.stat().st_size))
                except FileNotFoundError:
                    continue
        found.sort(key=lambda item: item[0].name)
        return found

    def size_bytes(self) -> int:
        """Bytes held by segments, claimed ones included."""
        total = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if _SEGMENT.match(entry.name) or _CLAIMED.match(entry.name):
                try:
                    total += entry.stat().st_size
                except FileNotFoundError:
                    continue
        return total

    def has_segments(self) -> bool:
        return bool(self._segments())

    def claim_oldest(self) -> tuple[Segment | None, int]:
        """Claim the oldest segment for sending; return it (or None) and its unreadable lines."""
        for path, _size in self._segments():
            claimed = path.with_name(f"{path.name}.sending-{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # claimed by another process in the meantime
            records, corrupt = self._read(claimed)
            if not records:
                claimed.unlink(missing_ok=True)
                if corrupt:
                    return None, corrupt
                continue
            return Segment(claimed, records), corrupt
        return None, 0

    @staticmethod
    def _read(path: Path) -> tuple[list[dict[str, Any]], int]:
        records: list[dict[str, Any]] = []
        corrupt = 0
        with path.open("rb") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    corrupt += 1
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    corrupt += 1
        return records, corrupt

    def finish(self, segment: Segment) -> None:
        """Forget a segment whose records were delivered or dropped."""
        segment.path.unlink(missing_ok=True)

    def release(self, segment: Segment) -> None:
        """Give a claimed segment back, unsent, for a later sender."""
        match = _CLAIMED.match(segment.path.name)
        if match is None:
            return
        with contextlib.suppress(FileNotFoundError):
            segment.path.rename(segment.path.with_name(match.group(1)))

    def release_stale_claims(self) -> None:
        """Give back segments claimed by processes that no longer run."""
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            match = _CLAIMED.match(entry.name)
            if match and not _pid_alive(int(match.group(2))):
                try:
                    Path(entry.path).rename(self.directory / match.group(1))
                except FileNotFoundError:
                    continue
