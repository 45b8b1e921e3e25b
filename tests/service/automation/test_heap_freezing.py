"""What a process of the service's own keeps (the rule index, the triage model) is frozen out of
the cyclic collector's reach once built, so that full collections stop walking it while requests
and workflow tasks wait; a program that embeds the service keeps its collector as it is."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from outbox_helpers import NOTIFY_RULE, WORKFLOW_RULE, add_rule

from service.automation.context import AutomationContext
from service.automation.engine import _rule_index
from service.heap import freeze_long_lived, stop_freezing
from service.jobs.inference import model, prepare_model

pytestmark = [pytest.mark.temporal, pytest.mark.redis]


def _walked_by_the_collector(obj: object) -> bool:
    """Whether a full collection visits ``obj`` (frozen objects are in no generation)."""
    assert gc.is_tracked(obj)
    return any(tracked is obj for tracked in gc.get_objects())


@pytest.fixture
def freezing() -> Iterator[None]:
    """This test process as the service's own: its heap frozen, and what it builds later."""
    freeze_long_lived()
    try:
        yield
    finally:
        stop_freezing()


@pytest.mark.usefixtures("freezing")
async def test_the_rule_index_is_frozen_when_built_and_again_when_rebuilt(
    ctx: AutomationContext,
) -> None:
    await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    index = await _rule_index(ctx)
    assert not _walked_by_the_collector(index)
    await add_rule(ctx.sessionmaker, WORKFLOW_RULE)
    rebuilt = await _rule_index(ctx)
    assert rebuilt is not index
    assert not _walked_by_the_collector(rebuilt)
    # the index holds no reference cycle: once replaced, frozen or not, it is freed
    old = weakref.ref(index)
    del index
    assert old() is None


@pytest.mark.usefixtures("freezing")
async def test_the_triage_model_is_frozen_once_trained() -> None:
    await prepare_model()
    assert not _walked_by_the_collector(model())


async def test_an_embedding_program_keeps_its_collector(ctx: AutomationContext) -> None:
    await add_rule(ctx.sessionmaker, NOTIFY_RULE)
    assert _walked_by_the_collector(await _rule_index(ctx))
