"""Long-lived objects out of the cyclic collector's reach, in the service's own processes.

A full collection walks every tracked object while the process's event loop, and every request
and workflow task in it, waits. With 32 clients reading statuses, one API process answered p50
32 ms but p99 150-160 ms, 3.4-3.5x the p99 of the same reads made straight to Temporal; with its
start-up heap frozen, p99 66-68 ms, 1.4-1.5x (``benchmarks/api_throughput.py --rounds 0``). A
process that froze its start-up heap also freezes what it builds later to keep (the rule index,
rebuilt when a rule changes; the triage model and the libraries it imports): in one process
holding API and worker, with 1,000 rules, full collections of 100-440 ms went on while tickets
waited for their workflows.

Freezing keeps objects that later die in a reference cycle for good, so only what lives as
long as the process, or until the next rebuild, is frozen, and rarely: the rule index and the
model hold no cycles (dropped, they are freed by reference counting). A program that embeds the
service (a test, a notebook, a benchmark of the library) keeps its collector as it is.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_if_freezing", "freeze_long_lived"]

_freezing = False


def freeze_long_lived() -> None:
    """Collect, then move every object alive now out of the collector's reach; from then on,
    :func:`freeze_if_freezing` freezes again. For a process of the service's own (API, worker),
    once started."""
    global _freezing
    _freezing = True
    gc.collect()
    gc.freeze()


def freeze_if_freezing() -> None:
    """In a process that froze its start-up heap (:func:`freeze_long_lived`), collect and
    freeze again: called once a long-lived structure is built. Elsewhere nothing."""
    if _freezing:
        gc.collect()
        gc.freeze()


def stop_freezing() -> None:
    """Give the frozen objects back to the collector and freeze no more (for tests)."""
    global _freezing
    _freezing = False
    gc.unfreeze()
