"""A private Signalbox deployment for fault scenarios: PostgreSQL, two Redis servers (shared cache,
Celery broker), gunicorn and a Celery worker, each a child process on its own free port in a temp
directory, so a scenario can stop and restart any of them without touching the machine's shared
servers. Used by tests/hardening/test_faults.py and tests/benchmarks/faults.py.

Every piece is a plain object with start()/stop(); `Stack.close()` stops them all and removes the
directory. When running as root, PostgreSQL runs as the `postgres` system user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("SIGNALBOX_PG_BIN", "/usr/lib/postgresql/15/bin"))
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
POLICY = "support-assistant"
TASK_TYPES = ("faq", "troubleshooting", "billing")


def missing_binaries() -> str | None:
    """Why a private stack cannot start here, or None."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "postgres").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if not Path(REDIS_SERVER).exists():
        return "no redis-server"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and no 'postgres' user to run PostgreSQL as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except RuntimeError:  # a process died: waiting longer cannot help
            raise
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (Linux /proc)."""
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def rss_mb(pid: int) -> float | None:
    """Resident set size of `pid` in MiB (VmRSS), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _stop_process(proc: subprocess.Popen[Any] | None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (trust auth, fsync off) on a free port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()
        self.log = directory / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: dict[str, Any] = {}
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            cwd=directory,
            **self._user,
        )

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=60",
                "-c",
                "shared_buffers=64MB",
                "-c",
                "log_min_messages=warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            **self._user,
        )
        log.close()
        wait_for(self._ready, 60, "PostgreSQL did not accept connections")

    def _ready(self) -> bool:
        import psycopg

        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
        with psycopg.connect(self.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self, mode: str = "fast") -> None:
        """Shut down: "fast" (SIGINT: abort transactions, close sessions) or "immediate" (SIGQUIT: crash)."""
        _stop_process(
            self.proc, {"fast": signal.SIGINT, "immediate": signal.SIGQUIT, "smart": signal.SIGTERM}[mode], timeout=60
        )
        self.proc = None

    def restart(self, mode: str = "immediate") -> float:
        """Stop and start again; return the seconds the server was unreachable."""
        started = time.monotonic()
        self.stop(mode)
        self.start()
        return time.monotonic() - started

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class PrivateRedis:
    """A redis-server with no persistence on a fixed free port (restarted on the same port)."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.log = directory / f"redis-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.directory,
        )
        wait_for(self._ping, 20, "redis-server did not answer PING")

    def _ping(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("redis-server exited")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def command(self, *args: str) -> bytes:
        """Send one command (inline protocol) and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(" ".join(args).encode() + b"\r\n")
            return s.recv(65536)

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Gunicorn:
    """gunicorn serving controlplane.wsgi (sync workers) on a fixed port, restartable."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2) -> None:
        self.env = env
        self.port = free_port()
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "controlplane.wsgi",
                "-w",
                str(self.workers),
                "-k",
                "sync",
                "-b",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--graceful-timeout",
                "10",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(
            lambda: self._alive() and _port_open(self.port) and len(self.worker_pids()) == self.workers,
            60,
            "gunicorn did not start",
        )

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
        return True

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        _stop_process(self.proc)
        self.proc = None
        wait_for(lambda: not _port_open(self.port), 20, "gunicorn's port did not close")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class CeleryWorker:
    """`celery -A controlplane worker` (prefork, one child by default) logging to a file."""

    def __init__(self, env: dict[str, str], log: Path, *, concurrency: int = 1) -> None:
        self.env = env
        self.log = log
        self.concurrency = concurrency
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.with_suffix(".out").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.concurrency),
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
                "-f",
                str(self.log),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"celery worker exited: {self.log_text()[-1500:]}"
                    f"{self.log.with_suffix('.out').read_text(errors='replace')[-1500:]}"
                )
            return " ready." in self.log_text()[offset:] and len(self.child_pids()) == self.concurrency

        wait_for(ready, 90, "the Celery worker did not get ready")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def child_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc is not None else []

    def stop(self) -> None:
        _stop_process(self.proc, signal.SIGTERM, timeout=30)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def run(args: list[str], env: dict[str, str]) -> str:
    """Run a command in the project; return its stdout, or raise with its stderr."""
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args[1:])} failed ({done.returncode}): {done.stderr[-3000:]}")
    return done.stdout


SEED = """
import django; django.setup()
from routing import demo
demo.demo_catalog_path = lambda: demo.FIXTURES / "demo_catalog.json"  # nothing from outside the repository
from routing.demo import demo_routing_load, demo_sdk_key
report, policies = demo_routing_load()
print(demo_sdk_key(policies)[1])
"""


class Stack:
    """The whole private deployment. `start()` migrates and seeds a database and starts every server."""

    def __init__(self, *, web_workers: int = 2, worker_concurrency: int = 1) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="signalbox-faults-"))
        self.directory.chmod(0o755)
        (self.directory / "pg").mkdir()
        self.pg: PrivatePostgres | None = None
        self.cache = PrivateRedis(self.directory, "cache")
        self.broker = PrivateRedis(self.directory, "broker")
        self.db = "signalbox"
        self.key = ""
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.web: Gunicorn | None = None
        self.worker: CeleryWorker | None = None

    def env(self) -> dict[str, str]:
        assert self.pg is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_"))}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "controlplane.settings",
                "DATABASE_URL": self.pg.url(self.db),
                "CACHE_URL": self.cache.url(0),
                "CELERY_BROKER_URL": self.broker.url(0),
                "SECRET_KEY": "fault-scenarios-secret-key-0000000000000000000000",
                "DEBUG": "false",
                "SECURE_SSL_REDIRECT": "false",
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "LOG_LEVEL": "WARNING",
                # Per-key rate limits stay on but never refuse a scenario's traffic.
                "CLIENT_RATE_LIMIT_POLICY_FETCH": "1000000000/minute",
                "CLIENT_RATE_LIMIT_DECISIONS": "1000000000/minute",
                "PYTHONPATH": str(ROOT),
            }
        )
        return env

    def start(self) -> Stack:
        self.pg = PrivatePostgres(self.directory / "pg")
        self.pg.start()
        self.cache.start()
        self.broker.start()
        self.sql(f'CREATE DATABASE "{self.db}"', db="postgres", autocommit=True)
        env = self.env()
        run([sys.executable, "manage.py", "migrate", "-v0"], env)
        self.key = run([sys.executable, "-c", SEED], env).strip().splitlines()[-1]
        self.web = Gunicorn(env, self.directory / "gunicorn.log", workers=self.web_workers)
        self.web.start()
        self.worker = CeleryWorker(env, self.directory / "worker.log", concurrency=self.worker_concurrency)
        return self

    def close(self) -> None:
        """Stop every process this stack started and remove its directory."""
        for stop in (
            self.worker and self.worker.stop,
            self.web and self.web.stop,
            self.broker.stop,
            self.cache.stop,
            self.pg and (lambda: self.pg.stop("immediate")),
        ):
            if stop:
                with contextlib.suppress(Exception):
                    stop()
        if not os.environ.get("SIGNALBOX_FAULTS_KEEP"):
            shutil.rmtree(self.directory, ignore_errors=True)

    # -- database -------------------------------------------------------------------------

    def sql(self, query: str, params: Any = None, *, db: str | None = None, autocommit: bool = False) -> list[tuple]:
        import psycopg

        assert self.pg is not None
        with psycopg.connect(self.pg.url(db or self.db), autocommit=autocommit, connect_timeout=5) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def reset(self) -> None:
        """Empty the decision tables and the broker's queue: each scenario starts from nothing."""
        self.sql("TRUNCATE metrics_decision, metrics_rollup_inbox, metrics_rollup_hourly")
        self.broker.command("FLUSHALL")

    def decision_counts(self) -> tuple[int, int]:
        """(rows, distinct event ids) in the raw decision table."""
        rows, distinct = self.sql("SELECT count(*), count(DISTINCT event_id) FROM metrics_decision")[0]
        return rows, distinct

    def event_ids(self) -> set[str]:
        return {row[0] for row in self.sql("SELECT event_id::text FROM metrics_decision")}

    def inbox_size(self) -> int:
        return self.sql("SELECT count(*) FROM metrics_rollup_inbox")[0][0]

    def rollup_total(self) -> int:
        return int(self.sql("SELECT coalesce(sum(count), 0) FROM metrics_rollup_hourly")[0][0])

    def rollup_mismatches(self) -> int:
        """Cells where the hourly rollups differ from a GROUP BY over the raw rows (both ways)."""
        from metrics.rollups import sql

        cells = f"SELECT {sql.DIMENSIONS}, {sql.MEASURES} FROM metrics_rollup_hourly"
        grouped = sql.aggregate_rows_sql("postgresql", "metrics_decision")
        raw = f"SELECT {sql.DIMENSIONS}, {sql.MEASURES} FROM ({grouped}) r"
        query = f"SELECT count(*) FROM (({cells} EXCEPT ALL {raw}) UNION ALL ({raw} EXCEPT ALL {cells})) d"
        return self.sql(query)[0][0]

    # -- Celery ---------------------------------------------------------------------------

    def beat_tick(self) -> str:
        """Queue metrics.rollups_update through the broker, as beat's minute schedule does; return the task id."""
        from celery import Celery

        app = Celery("signalbox-faults", broker=self.broker.url(0))
        try:
            return app.send_task("metrics.rollups_update", retry=True).id
        finally:
            app.close()

    def wait_rollups_caught_up(self, timeout: float) -> None:
        """Wait until the inbox is empty (ticking beat every few seconds, as beat would)."""
        deadline = time.monotonic() + timeout
        last_tick = 0.0
        while self.inbox_size():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"rollups did not catch up within {timeout:.0f} s ({self.inbox_size()} deltas pending)"
                )
            if time.monotonic() - last_tick > 5:
                self.beat_tick()
                last_tick = time.monotonic()
            time.sleep(0.2)


class Traffic:
    """Threads driving the real client: run() with a no-op LLM call at a steady rate per thread.

    Collects the event id of every attempt (what the control plane must end up holding) and any
    exception the SDK let through (there must be none).
    """

    def __init__(self, client: Any, *, threads: int = 2, rate: float = 100.0) -> None:
        self.client = client
        self.rate = rate
        self.event_ids: list[str] = []
        self.errors: list[str] = []
        self.runs = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(threads)]

    def _loop(self, index: int) -> None:
        from signalbox_client import CallResult

        def call(attempt: Any) -> Any:
            return CallResult("ok", confidence=0.95, tokens_in=120, tokens_out=30)

        period = 1.0 / self.rate
        next_at = time.monotonic()
        n = index
        while not self._stop.is_set():
            try:
                result = self.client.run(TASK_TYPES[n % len(TASK_TYPES)], call, prompt_tokens=120)
                ids = [a.event_id for a in result.attempts]
            except Exception as exc:  # the SDK must never raise here: counted and asserted on
                with self._lock:
                    self.errors.append(repr(exc))
            else:
                with self._lock:
                    self.event_ids.extend(ids)
                    self.runs += 1
            n += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_at = time.monotonic()

    def start(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


@contextlib.contextmanager
def traffic(client: Any, **options: Any) -> Iterator[Traffic]:
    t = Traffic(client, **options).start()
    try:
        yield t
    finally:
        t.stop()


def new_event_id() -> str:
    return str(uuid.uuid4())


def decision_record(**changes: Any) -> dict[str, Any]:
    """A valid decision record for the demo policy (timestamp: an hour ago, unique event id)."""
    from datetime import UTC, datetime, timedelta

    base: dict[str, Any] = {
        "event_id": new_event_id(),
        "timestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "policy": POLICY,
        "policy_version": 1,
        "route": "faq",
        "task_type": "faq",
        "model": "gpt-4o-mini",
        "provider": "openai",
        "tier": 1,
        "attempt": 1,
        "request_id": uuid.uuid4().hex,
        "reason": {"route_by": "task_type", "tier_by": "start"},
        "outcome": "ok",
        "confidence": 0.9,
        "tokens_in": 1000,
        "tokens_out": 200,
        "latency_ms": 420.5,
        "client": {"app": "faults", "instance": "host:1", "sdk_version": "0.1.0"},
        "attributes": {"user_tier": "pro"},
    }
    base.update(changes)
    return base


def post_decisions(stack: Stack, records: list[dict[str, Any]], *, timeout: float = 60) -> Any:
    """POST one batch to the ingestion endpoint; return the httpx response."""
    import httpx
    import orjson

    assert stack.web is not None
    return httpx.post(
        f"{stack.web.url}/api/v1/client/decisions",
        content=orjson.dumps({"decisions": records}),
        headers={"Authorization": f"Bearer {stack.key}", "Content-Type": "application/json"},
        timeout=timeout,
    )
