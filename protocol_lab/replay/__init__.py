"""Replay: a simulated (or observed) run played against the live service, at compressed time.

- :mod:`~protocol_lab.replay.script`: :class:`ReplayScript`, the time-ordered API calls that
  drove the run from outside (ticket creations and updates, signals, cancellations);
- :mod:`~protocol_lab.replay.player`: :func:`replay_async` / :func:`replay` perform a script
  through :class:`protocol_lab.client.AsyncClient` at ``compression`` (= the service's
  ``TIME_SCALE``), idempotently, finding the workflows the service's rules started;
- :mod:`~protocol_lab.replay.readback`: :func:`load_replayed` reads the real timelines back
  (through the API or from Temporal) onto the script's simulated clock;
- :mod:`~protocol_lab.replay.pipeline`: :func:`run_closed_loop` (and
  :func:`run_closed_loop_async`), simulate -> replay -> load -> compare -> calibrate in one
  call, used by ``protocol-lab demo``, ``protocol-lab replay`` and notebook 03.
"""

from protocol_lab.replay.pipeline import LoopResult, run_closed_loop, run_closed_loop_async
from protocol_lab.replay.player import (
    REPLAYED_TRIGGERS,
    ActionOutcome,
    ReplayResult,
    install_rules,
    patient_retry,
    replay,
    replay_async,
    warm_up,
)
from protocol_lab.replay.readback import load_replayed, simulated_timelines, to_simulated_time
from protocol_lab.replay.script import Action, ActionKind, ReplayScript, ScriptedWorkflow

__all__ = [
    "REPLAYED_TRIGGERS",
    "Action",
    "ActionKind",
    "ActionOutcome",
    "LoopResult",
    "ReplayResult",
    "ReplayScript",
    "ScriptedWorkflow",
    "install_rules",
    "load_replayed",
    "patient_retry",
    "replay",
    "replay_async",
    "run_closed_loop",
    "run_closed_loop_async",
    "simulated_timelines",
    "to_simulated_time",
    "warm_up",
]
