"""Types of protocol_lab.sim's public names: the one list they are loaded from, lazily."""

from .calibration import (
    calibrate as calibrate,
    Calibration as Calibration,
    calibration_error as calibration_error,
    fit_duration as fit_duration,
    FittedDuration as FittedDuration,
)
from .log_calibration import (
    calibrate_from_log as calibrate_from_log,
    compare_resolution as compare_resolution,
    LogCalibration as LogCalibration,
    plot_resolution_ecdf as plot_resolution_ecdf,
)
from .model import (
    ServiceDeskModel as ServiceDeskModel,
    simulate as simulate,
)
from .planning import (
    CapacityPlan as CapacityPlan,
    plan_capacity as plan_capacity,
    QueueTarget as QueueTarget,
)
from .profiles import (
    HourOfWeekProfile as HourOfWeekProfile,
)
from .results import (
    SimulationResult as SimulationResult,
)
from .scenario import (
    Arrivals as Arrivals,
    ArrivalStream as ArrivalStream,
    JobQueueConfig as JobQueueConfig,
    load_scenario as load_scenario,
    RateLimit as RateLimit,
    save_scenario as save_scenario,
    Scenario as Scenario,
    SCENARIO_DIR as SCENARIO_DIR,
    SignalConfig as SignalConfig,
    TaskQueueConfig as TaskQueueConfig,
)
from .state_flow import (
    simulate_states as simulate_states,
)
from .state_model import (
    StateModel as StateModel,
)
from .whatif import (
    compare_rules as compare_rules,
    RuleComparison as RuleComparison,
)
