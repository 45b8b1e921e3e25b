"""The worker's resources: the process's one container, :class:`service.state.Resources`.

Activity classes and job processors take it, so they stay testable with a container of their own.
"""

from __future__ import annotations

from service.state import Resources

__all__ = ["WorkerResources"]

# The name activities and job processors know the container by.
WorkerResources = Resources
