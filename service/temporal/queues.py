"""The Temporal task queues behind the spec's five: the spec's names, after an optional prefix.

``Settings.task_queue_prefix`` (empty by default: the spec's names unchanged) gives one
deployment's, or one test's, worker and starts task queues of their own on a shared Temporal
namespace, so that no other worker takes their tasks. Only Temporal sees the prefixed names:
the API, the store and the metrics speak the spec's (:func:`spec_queue` turns a name Temporal
reports back).
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol_lab.domain import TaskQueue
from service.settings import Settings

__all__ = ["spec_queue", "temporal_queue", "temporal_queues"]


def temporal_queue(settings: Settings, queue: str) -> str:
    """The Temporal task queue that serves the spec's task queue ``queue``."""
    return settings.task_queue_prefix + queue


def temporal_queues(settings: Settings, queues: Iterable[str] | None = None) -> list[str]:
    """The Temporal task queues of ``queues`` (default: the spec's five)."""
    names = [q.value for q in TaskQueue] if queues is None else list(queues)
    return [temporal_queue(settings, name) for name in names]


def spec_queue(settings: Settings, queue: str) -> str:
    """The spec's name of the Temporal task queue ``queue`` (as is when it lacks the prefix)."""
    prefix = settings.task_queue_prefix
    return queue[len(prefix) :] if prefix and queue.startswith(prefix) else queue
