"""Rules for tests that care only about their trigger and conditions."""

from __future__ import annotations

from typing import Any

from protocol_lab.domain.rules import Rule

__all__ = ["notify_rule"]


def notify_rule(index: int, trigger: str, conditions: dict[str, Any]) -> Rule:
    """An enabled rule ``r<index>`` on ``trigger`` with ``conditions`` that sends a notification."""
    return Rule.model_validate(
        {
            "name": f"r{index}",
            "trigger": trigger,
            "conditions": conditions,
            "action": {"type": "send_notification", "recipient": "ops", "message": "m"},
        }
    )
