"""The error tree of protocol-lab.

Every error the library raises on purpose derives from one root, so callers can catch
``ProtocolLabError`` and be sure nothing of ours escapes::

    ProtocolLabError
     ├── TimelineSchemaError      a timeline row or column breaks the event schema
     ├── CatalogError             a workflow definition file is missing or malformed
     ├── RuleError                a rule, condition or action is malformed
     │    └── RuleCycleError      update_field actions of a rule set trigger each other
     ├── SlaConfigError           an SLA target file is malformed
     └── ScenarioError            a simulation scenario is malformed
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "ProtocolLabError",
    "RuleCycleError",
    "RuleError",
    "ScenarioError",
    "SlaConfigError",
    "TimelineSchemaError",
]


class ProtocolLabError(Exception):
    """Root of every error raised on purpose by protocol-lab."""


class TimelineSchemaError(ProtocolLabError, ValueError):
    """A timeline row or frame does not follow the event schema.

    ``row`` is the zero-based position of the offending row (None for frame-level problems)
    and ``field`` the column at fault.
    """

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + message)
        self.row = row
        self.field = field


class CatalogError(ProtocolLabError, ValueError):
    """A workflow catalog file is missing or malformed; the message names file, plan, field."""


class RuleError(ProtocolLabError, ValueError):
    """A rule, its conditions or its action are malformed."""


class RuleCycleError(RuleError):
    """The update_field actions of a rule set can trigger each other forever."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("update_field actions form a cycle: " + " -> ".join(cycle))
        self.cycle = cycle


class SlaConfigError(ProtocolLabError, ValueError):
    """An SLA target file is malformed."""


class ScenarioError(ProtocolLabError, ValueError):
    """A simulation scenario is malformed."""
