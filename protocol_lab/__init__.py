"""protocol-lab: ITSM workflow timelines as dataframes, SLA analytics, SimPy capacity simulation.

The library imports no service, fastapi or temporalio code at import time.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
