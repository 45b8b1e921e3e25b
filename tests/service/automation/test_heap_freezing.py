"""The worker's own process builds what it keeps (the triage model, the rule index) before it
freezes its start-up heap, so that full collections do not walk them while workflow tasks and
events wait; a program that embeds the worker keeps its collector as it is."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from outbox_helpers import NOTIFY_RULE, add_rule

from service.automation.context import AutomationContext
from service.automation.engine import rule_index
from service.jobs import inference
from service.state import Resources
from service.temporal.worker import ready_to_freeze

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


def _walked_by_the_collector(obj: object) -> bool:
    """Whether a full collection visits ``obj`` (frozen objects are in no generation)."""
    assert gc.is_tracked(obj)
    return any(tracked is obj for tracked in gc.get_objects())


@pytest.fixture
def thawed() -> Iterator[None]:
    """This test process's heap given back to the collector afterwards."""
    try:
        yield
    finally:
        gc.unfreeze()


@pytest.mark.usefixtures("thawed")
async def test_the_worker_trains_its_model_and_builds_its_rule_index_then_freezes(
    app_state: Resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference, "_MODEL", None)  # not trained yet, as in a new process
    monkeypatch.setattr(app_state, "rule_caches", type(app_state.rule_caches)())
    await ready_to_freeze(app_state)
    index = app_state.rule_caches.index
    assert index is not None  # built ahead of the first batch of events
    assert not _walked_by_the_collector(index[1])
    assert not _walked_by_the_collector(inference.model())


async def test_an_embedding_program_keeps_its_collector(ctx: AutomationContext) -> None:
    await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    await rule_index(ctx)
    assert ctx.caches.index is not None
    assert _walked_by_the_collector(ctx.caches.index[1])
