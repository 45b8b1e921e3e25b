"""The engine's equality pre-check never rules out a rule the matcher would fire."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol_lab.domain import Rule, match_conditions
from service.automation.engine import _surely_misses
from service.jobs.signing import sign, verify

VALUES = st.sampled_from(["P1", "P2", "open", "incident", "x", None])
FIELDS = st.sampled_from(["priority", "status", "category", "assignee"])
SPECS = st.one_of(
    VALUES.filter(lambda v: v is not None),
    st.builds(lambda v: {"in": [v, "P3"]}, VALUES),
    st.builds(lambda v: {"changed_to": v}, VALUES.filter(lambda v: v is not None)),
    st.builds(lambda n: {"gte": n}, st.integers(0, 48)),
)


@settings(max_examples=150, deadline=None)
@given(
    conditions=st.dictionaries(FIELDS, SPECS, max_size=3),
    ticket=st.fixed_dictionaries(
        {"priority": VALUES, "status": VALUES, "category": VALUES, "assignee": VALUES}
    ),
    previous=st.fixed_dictionaries({"priority": VALUES, "status": VALUES}),
    idle=st.one_of(st.none(), st.integers(0, 48)),
)
def test_precheck_agrees_with_the_matcher(
    conditions: dict[str, Any],
    ticket: dict[str, Any],
    previous: dict[str, Any],
    idle: int | None,
) -> None:
    if idle is not None:
        conditions = {**conditions, "idle_hours": idle}
    rule = Rule.model_validate(
        {
            "name": "r",
            "trigger": "on_ticket_updated",
            "conditions": conditions,
            "action": {"type": "update_field", "field": "assignee", "value": "z"},
        }
    )
    record = {**ticket, "last_activity_at": 0.0}
    matched = match_conditions(rule.conditions, record, previous=previous, now=86_400.0).matched
    if _surely_misses(rule, record):
        assert not matched


def test_signatures() -> None:
    body = b'{"a":1}'
    good = sign(body, secret="s", timestamp=1000)
    assert verify(body, secret="s", timestamp="1000", signature=good, now=1100) is None
    assert verify(body, secret="t", timestamp="1000", signature=good, now=1100) is not None
    assert verify(body + b" ", secret="s", timestamp="1000", signature=good, now=1100)
    assert verify(body, secret="s", timestamp="1001", signature=good, now=1100)
    assert "window" in (verify(body, secret="s", timestamp="1000", signature=good, now=2000) or "")
    assert verify(body, secret="s", timestamp="soon", signature=good, now=1100)
    assert verify(body, secret="s", timestamp=None, signature=good, now=1100)
