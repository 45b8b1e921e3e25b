"""The shared model of protocol-lab: timeline schema, workflow catalog, rules, queues, SLA targets.

Imported by the service, the analytics and the simulator alike; imports none of fastapi or
temporalio.
"""

# Every public name is imported on first use from the submodule that defines it; the list of
# names, and their types for type checkers, is the stub beside this file (__init__.pyi).
import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
