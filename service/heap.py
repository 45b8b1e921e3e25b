"""Long-lived objects out of the cyclic collector's reach, in the service's own processes.

A full collection walks every tracked object while the process's event loop, and every request
and workflow task in it, waits. With 32 clients reading statuses, one API process answered p50
32 ms but p99 150-160 ms, 3.4-3.5x the p99 of the same reads made straight to Temporal; with its
start-up heap frozen, p99 66-68 ms, 1.4-1.5x (``benchmarks/api_throughput.py --rounds 0``). The
worker process first builds what it keeps (the triage model and the libraries it imports, the
rule index), then freezes: unfrozen, they made full collections of 100-440 ms while tickets
waited for their workflows (``benchmarks/rules_throughput.py``, 1,000 rules).

Freezing is done once, at start-up, before any request or workflow task is in flight: a freeze
takes every object alive, and one that later died in a reference cycle would stay for good. So
what is built later (a rule index rebuilt after a rule changes) is left to the collector. A
program that embeds the service (a test, a notebook) keeps its collector as it is.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_long_lived"]


def freeze_long_lived() -> None:
    """Collect, then move every object alive now out of the collector's reach for good: for a
    process of the service's own (API, worker), once started and before it takes work."""
    gc.collect()
    gc.freeze()
