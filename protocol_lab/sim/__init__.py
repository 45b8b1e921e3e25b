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

# Every public name is imported on first use from the submodule that defines it (planning and
# what-ifs pull in matplotlib and scipy); the names, and their types for type checkers, are the
# stub beside this file (__init__.pyi).
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
