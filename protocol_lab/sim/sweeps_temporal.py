"""Sweeps on Temporal: replications as activities on a simulation task queue, on any machines.

A simulation worker (:func:`run_simulation_worker`, ``protocol-lab worker --sim``) polls the
simulation task queue (``protocol-lab-simulation`` unless ``SIMULATION_TASK_QUEUE`` or an argument
names another) and runs each replication in a process of its own pool: the simulator is
CPU-bound and holds the GIL, so one worker runs as many replications at once as it has processes
(by default its cores), and more machines running workers make a sweep faster.

The client side is :class:`TemporalRunner`, which :func:`run_replications`,
:func:`plan_capacity` and :func:`compare_rules` accept as ``runner=``: the same seeds as the local
pool, the same summaries in the same order, so the answer does not depend on where it ran.

What it does needs the ``temporal`` extra (temporalio, imported on use) and nothing of the
service; with the service installed, connections read the service's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from protocol_lab.domain.errors import ProtocolLabError
from protocol_lab.domain.extras import MissingExtraError
from protocol_lab.polling import polled
from protocol_lab.sim.replications import run_replication
from protocol_lab.sim.sweep_workflow import (
    SIMULATE_REPLICATION,
    SWEEP_WORKFLOW,
    ReplicationInput,
    ReplicationJob,
    SweepInput,
    sweep_workflow,
)

if TYPE_CHECKING:
    from temporalio.client import Client

__all__ = [
    "DEFAULT_SIMULATION_TASK_QUEUE",
    "NoSimulationWorkerError",
    "SweepFailedError",
    "TemporalRunner",
    "replication_summary_json",
    "run_simulation_worker",
    "simulation_activity",
    "simulation_connect_options",
    "simulation_task_queue",
]

DEFAULT_SIMULATION_TASK_QUEUE = "protocol-lab-simulation"
_TASK_QUEUE_ENV = "SIMULATION_TASK_QUEUE"
_LOCAL = "localhost:7233"


class NoSimulationWorkerError(ProtocolLabError):
    """Temporal is reachable but no simulation worker polls the simulation task queue."""


class SweepFailedError(ProtocolLabError):
    """A sweep failed on Temporal (a replication failed every attempt)."""


def simulation_task_queue(name: str | None = None) -> str:
    """``name``, else ``SIMULATION_TASK_QUEUE``, else ``protocol-lab-simulation``."""
    return name or os.environ.get(_TASK_QUEUE_ENV) or DEFAULT_SIMULATION_TASK_QUEUE


def simulation_connect_options(
    address: str | None = None,
    *,
    namespace: str | None = None,
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of :meth:`temporalio.client.Client.connect` for sweeps.

    ``base`` (the command line passes the service's settings when the service is installed:
    ``TEMPORAL_ADDRESS``, its namespace, TLS, API key, a ``.env`` file), else the Temporal
    SDK's own client configuration (its profile and ``TEMPORAL_*`` variables); ``address`` and
    ``namespace`` win.
    """
    try:
        from temporalio.envconfig import ClientConfig
    except ImportError as exc:
        raise MissingExtraError("temporal", "Sweeps on Temporal", exc.name) from None
    options: dict[str, Any] = (
        dict(base) if base is not None else dict(ClientConfig.load_client_connect_config())
    )
    if address:
        options["target_host"] = address
    options.setdefault("target_host", _LOCAL)
    if namespace:
        options["namespace"] = namespace
    return options


# --- the worker side -------------------------------------------------------------------------


def replication_summary_json(scenario_json: str, seed: int) -> str:
    """One replication's summary as JSON (what a process of the worker's pool runs)."""
    return json.dumps(run_replication(scenario_json, seed))


def simulation_activity(pool: ProcessPoolExecutor) -> Callable[..., Any]:
    """The simulation worker's activity: each replication runs in a process of ``pool``.

    The activity itself is async, on the worker's event loop: it hands the replication to the
    pool and heartbeats while it waits, so a worker that dies is noticed within the heartbeat
    timeout and its replication runs again on a live worker. (Temporal's own process executor
    would carry the heartbeats through a multiprocessing manager, two more processes' worth of
    round trips for every replication.)
    """
    from temporalio import activity

    @activity.defn(name=SIMULATE_REPLICATION)
    async def simulate_replication(replication: ReplicationInput) -> str:
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            pool, replication_summary_json, replication.scenario_json, replication.seed
        )
        timeout = activity.info().heartbeat_timeout
        every = max(0.1, timeout.total_seconds() / 4) if timeout else None
        while not (await asyncio.wait({work}, timeout=every))[0]:
            activity.heartbeat()
        return work.result()

    return simulate_replication


def _warm() -> None:
    import protocol_lab.sim.model  # noqa: F401


def _ignore_stop_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


async def run_simulation_worker(
    client: Client,
    *,
    task_queue: str | None = None,
    processes: int | None = None,
    stop: asyncio.Event | None = None,
    graceful_shutdown: timedelta = timedelta(seconds=5),
) -> None:
    """Poll the simulation task queue until ``stop`` is set (or SIGINT/SIGTERM without one).

    ``processes`` (default: the machine's cores) is both the size of the process pool that runs
    replications and the worker's activity slots, so it never takes more than it can run.
    """
    from temporalio.worker import Worker

    processes = max(1, processes or os.cpu_count() or 1)
    queue = simulation_task_queue(task_queue)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
    spawn = mp.get_context("spawn")
    # The pool's processes ignore SIGINT/SIGTERM: Ctrl-C (or a stop) reaches the whole process
    # group, and only this process acts on it, shutting the pool down after what it is running.
    with ProcessPoolExecutor(
        max_workers=processes, mp_context=spawn, initializer=_ignore_stop_signals
    ) as pool:
        # start every process and import the simulator before taking the first replication
        await asyncio.gather(
            *(asyncio.get_running_loop().run_in_executor(pool, _warm) for _ in range(processes))
        )
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[sweep_workflow()],
            activities=[simulation_activity(pool)],
            max_concurrent_activities=processes,
            graceful_shutdown_timeout=graceful_shutdown,
        )
        running = asyncio.create_task(worker.run(), name=f"worker:{queue}")
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([running, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if worker.is_running:
                await worker.shutdown()
            stopper.cancel()
            await asyncio.gather(running, stopper, return_exceptions=True)
        if running.done() and not running.cancelled() and running.exception() is not None:
            raise running.exception()  # type: ignore[misc]


# --- the client side -------------------------------------------------------------------------


class TemporalRunner:
    """Runs replications on the simulation workers of a Temporal cluster.

    Each call submits its replications through sweep workflows (``SimulationSweep``, at most
    ``sweep_size`` replications each) that fan them out as activities and return the summaries
    in order. A workflow per sweep rather than one per replication: the scenario JSON travels
    once per sweep, the start costs one request instead of one per replication, and the sweep is
    durable: its id is a digest of its content, so the same call made again (after the client
    was restarted) attaches to the sweep still running instead of starting it over. Progress is
    the workflow's ``finished`` query, read every ``poll_s`` seconds.

    Before it starts a sweep the runner waits at most ``wait_for_worker_s`` seconds for a worker
    to poll the task queue, then raises :class:`NoSimulationWorkerError`. (A schedule-to-start
    timeout on the activities would also fire on a long backlog served by live workers.)
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        namespace: str | None = None,
        task_queue: str | None = None,
        connect_options: Mapping[str, Any] | None = None,
        wait_for_worker_s: float = 60.0,
        heartbeat_timeout_s: float = 30.0,
        sweep_size: int = 100,
        poll_s: float = 0.5,
    ) -> None:
        """Connect to ``address`` (or as :func:`simulation_connect_options` says) when run."""
        self.connect_options = (
            dict(connect_options)
            if connect_options is not None
            else simulation_connect_options(address, namespace=namespace)
        )
        self.task_queue = simulation_task_queue(task_queue)
        self.wait_for_worker_s = wait_for_worker_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.sweep_size = max(1, sweep_size)
        self.poll_s = poll_s

    def run(
        self,
        payloads: Sequence[tuple[str, int]],
        *,
        on_finished: Callable[[int], object] | None = None,
    ) -> list[dict[str, Any]]:
        """The summary of each (scenario JSON, seed), in order; ``on_finished(n)`` as runs end.

        Callable from code with or without a running event loop (a notebook has one): then it
        runs in a thread of its own.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.run_async(payloads, on_finished=on_finished))
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(
                asyncio.run, self.run_async(payloads, on_finished=on_finished)
            ).result()

    async def run_async(
        self,
        payloads: Sequence[tuple[str, int]],
        *,
        on_finished: Callable[[int], object] | None = None,
        client: Client | None = None,
    ) -> list[dict[str, Any]]:
        """:meth:`run` for async code, on ``client`` when given."""
        from temporalio.client import Client

        if not payloads:
            return []
        client = client or await Client.connect(**self.connect_options)
        await self._wait_for_worker(client)
        chunks = [
            payloads[i : i + self.sweep_size] for i in range(0, len(payloads), self.sweep_size)
        ]
        results = await asyncio.gather(
            *(self._sweep(client, chunk, on_finished or (lambda _: None)) for chunk in chunks)
        )
        return [summary for chunk in results for summary in chunk]

    async def _wait_for_worker(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_for_worker_s
        while not await polled(client, [self.task_queue]):
            if loop.time() >= deadline:
                raise NoSimulationWorkerError(
                    f"no simulation worker polls task queue {self.task_queue!r} at "
                    f"{self.connect_options['target_host']} (waited "
                    f"{self.wait_for_worker_s:g} s); start one: protocol-lab worker --sim"
                )
            await asyncio.sleep(min(1.0, max(0.0, deadline - loop.time())))

    async def _sweep(
        self,
        client: Client,
        payloads: Sequence[tuple[str, int]],
        on_finished: Callable[[int], object],
    ) -> list[dict[str, Any]]:
        from temporalio.client import (
            WorkflowFailureError,
            WorkflowQueryFailedError,
            WorkflowQueryRejectedError,
        )
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.service import RPCError

        scenarios = list(dict.fromkeys(scenario for scenario, _ in payloads))
        index = {scenario: k for k, scenario in enumerate(scenarios)}
        sweep = SweepInput(
            scenarios=scenarios,
            jobs=[ReplicationJob(index[scenario], seed) for scenario, seed in payloads],
            heartbeat_timeout_s=self.heartbeat_timeout_s,
        )
        content = json.dumps([self.task_queue, scenarios, [list(p) for p in payloads]])
        sweep_id = "simulation-sweep-" + hashlib.sha256(content.encode()).hexdigest()[:24]
        handle = await client.start_workflow(
            SWEEP_WORKFLOW,
            sweep,
            id=sweep_id,
            result_type=list[str],
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        result = asyncio.ensure_future(handle.result())
        reported = 0
        try:
            while not (await asyncio.wait({result}, timeout=self.poll_s))[0]:
                with contextlib.suppress(
                    RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError
                ):
                    finished = await handle.query(
                        "finished", result_type=int, rpc_timeout=timedelta(seconds=5)
                    )
                    if finished > reported:
                        on_finished(finished - reported)
                        reported = finished
            summaries: list[dict[str, Any]] = [json.loads(text) for text in result.result()]
        except WorkflowFailureError as exc:
            cause: BaseException = exc
            while cause.__cause__ is not None:
                cause = cause.__cause__
            raise SweepFailedError(f"simulation sweep {sweep_id} failed: {cause}") from exc
        finally:
            result.cancel()
        on_finished(len(summaries) - reported)
        return summaries
