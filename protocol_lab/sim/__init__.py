"""protocol_lab.sim: a SimPy model of the service desk, for capacity planning and what-ifs.

Tickets arrive (Poisson streams with an hour-of-week profile), the service's own rules fire on
them with the service's own matcher, the catalog's workflows run on Temporal task queues with
worker slots, wait for human signals on a business calendar, retry per their policies, and put
jobs on rate-limited BullMQ queues. A run emits timelines in the shared schema plus queue
metrics; :func:`plan_capacity` searches the cheapest workers per queue that meet SLA targets, and
:func:`compare_rules` measures what a rule change would do before it is enabled;
:func:`calibrate` fits a scenario to observed timelines and measures its error;
:func:`calibrate_from_log` fits a state-model scenario to a foreign ITSM log (states, routing,
dwells, group capacities), :func:`simulate_states` runs it and :func:`compare_resolution`
measures its resolution times against the log's.
"""

from typing import Any

from protocol_lab.sim.model import ServiceDeskModel, simulate
from protocol_lab.sim.profiles import HourOfWeekProfile
from protocol_lab.sim.results import SimulationResult
from protocol_lab.sim.scenario import (
    SCENARIO_DIR,
    Arrivals,
    ArrivalStream,
    JobQueueConfig,
    RateLimit,
    Scenario,
    SignalConfig,
    TaskQueueConfig,
    load_scenario,
    save_scenario,
)

__all__ = [
    "SCENARIO_DIR",
    "ArrivalStream",
    "Arrivals",
    "Calibration",
    "CapacityPlan",
    "FittedDuration",
    "HourOfWeekProfile",
    "JobQueueConfig",
    "LogCalibration",
    "QueueTarget",
    "RateLimit",
    "RuleComparison",
    "Scenario",
    "ServiceDeskModel",
    "SignalConfig",
    "SimulationResult",
    "StateModel",
    "TaskQueueConfig",
    "calibrate",
    "calibrate_from_log",
    "calibration_error",
    "compare_resolution",
    "compare_rules",
    "fit_duration",
    "load_scenario",
    "plan_capacity",
    "plot_resolution_ecdf",
    "save_scenario",
    "simulate",
    "simulate_states",
]

# Planning and what-ifs pull in matplotlib and scipy: imported on first use.
_LAZY = {
    "CapacityPlan": "protocol_lab.sim.planning",
    "QueueTarget": "protocol_lab.sim.planning",
    "plan_capacity": "protocol_lab.sim.planning",
    "RuleComparison": "protocol_lab.sim.whatif",
    "compare_rules": "protocol_lab.sim.whatif",
    "Calibration": "protocol_lab.sim.calibration",
    "FittedDuration": "protocol_lab.sim.calibration",
    "calibrate": "protocol_lab.sim.calibration",
    "calibration_error": "protocol_lab.sim.calibration",
    "fit_duration": "protocol_lab.sim.calibration",
    "LogCalibration": "protocol_lab.sim.log_calibration",
    "calibrate_from_log": "protocol_lab.sim.log_calibration",
    "compare_resolution": "protocol_lab.sim.log_calibration",
    "plot_resolution_ecdf": "protocol_lab.sim.log_calibration",
    "simulate_states": "protocol_lab.sim.state_flow",
    "StateModel": "protocol_lab.sim.state_model",
}


def __getattr__(name: str) -> Any:
    """Import the planning, what-if, calibration and state-model names when first asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
