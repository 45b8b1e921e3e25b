"""protocol_lab.sim: a SimPy model of the service desk, for capacity planning and what-ifs.

Tickets arrive (Poisson streams with an hour-of-week profile), the service's own rules fire on
them with the service's own matcher, the catalog's workflows run on Temporal task queues with
worker slots, wait for human signals on a business calendar, retry per their policies, and put
jobs on rate-limited BullMQ queues. A run emits timelines in the shared schema plus queue
metrics; :func:`plan_capacity` searches the cheapest workers per queue that meet SLA targets, and
:func:`compare_rules` measures what a rule change would do before it is enabled.
"""

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
    "HourOfWeekProfile",
    "JobQueueConfig",
    "RateLimit",
    "Scenario",
    "ServiceDeskModel",
    "SignalConfig",
    "SimulationResult",
    "TaskQueueConfig",
    "load_scenario",
    "save_scenario",
    "simulate",
]
