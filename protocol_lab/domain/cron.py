"""Cron expressions of scheduled rules: checked once when a rule is saved, read as UTC.

An expression has the five standard fields (minute, hour, day of month, month, day of week;
numbers, ``*``, ranges, steps, lists, month and day names) or is one of the macros ``@hourly``,
``@daily``, ``@midnight``, ``@weekly``, ``@monthly``, ``@yearly``, ``@annually``. A seconds
field, ``L``, ``W``, ``#`` and ``?`` are refused: minute granularity bounds how often a rule
runs (at most once every :data:`MIN_CRON_INTERVAL_S`), and what is left maps exactly onto
Temporal's calendar specs. As in cron, when both the day of month and the day of week are
restricted, a day matching either one fires.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from croniter import croniter

from protocol_lab.domain.errors import RuleError

__all__ = ["MAX_CRON_CHARS", "MIN_CRON_INTERVAL_S", "CronFields", "next_fire", "parse_cron"]

MAX_CRON_CHARS: Final = 120
MIN_CRON_INTERVAL_S: Final = 60.0
_MACROS: Final = frozenset(
    {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
)
_FIELD: Final = re.compile(r"[0-9A-Za-z*,/-]+")
_NAMES: Final = re.compile(
    r"jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat",
    re.IGNORECASE,
)
# The bounds of each field, as Temporal's calendar specs number them.
_BOUNDS: Final = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@dataclass(frozen=True, slots=True)
class CronFields:
    """The values each field allows (minute, hour, day of month, month, day of week 0=Sunday),
    and whether days match by month day *or* weekday (both restricted, as in cron)."""

    minute: tuple[int, ...]
    hour: tuple[int, ...]
    day_of_month: tuple[int, ...]
    month: tuple[int, ...]
    day_of_week: tuple[int, ...]
    days_either: bool


def _check_text(expression: str) -> None:
    if not expression or len(expression) > MAX_CRON_CHARS:
        raise RuleError(f"schedule_cron: give 1 to {MAX_CRON_CHARS} characters")
    if expression.startswith("@"):
        if expression.lower() not in _MACROS:
            raise RuleError(
                f"schedule_cron: unknown macro {expression!r}; use one of {sorted(_MACROS)}"
            )
        return
    fields = expression.split()
    if len(fields) != 5:
        raise RuleError(
            "schedule_cron: needs 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)}; a seconds field is not supported"
        )
    for field in fields:
        letters = _NAMES.sub("", field)
        if not _FIELD.fullmatch(field) or re.search(r"[A-Za-z]", letters):
            raise RuleError(
                f"schedule_cron: field {field!r} not supported; use numbers, *, ranges (a-b), "
                "steps (/n), lists (a,b) and month or day names"
            )


def _values(expanded: list[int | str], bounds: tuple[int, int]) -> tuple[int, ...]:
    low, high = bounds
    if expanded and expanded[0] == "*":
        return tuple(range(low, high + 1))
    values = sorted({int(v) % 7 if high == 6 else int(v) for v in expanded})
    return tuple(values)


def parse_cron(expression: str) -> CronFields:
    """The fields of a cron expression; :class:`RuleError` saying what is wrong with it.

    Refuses an expression that never fires (``0 0 31 2 *``).
    """
    _check_text(expression)
    try:
        parsed = croniter(expression, datetime(2000, 1, 1, tzinfo=UTC))
        parsed.get_next(float)
    except Exception as exc:  # croniter's errors have no common base worth naming
        raise RuleError(f"schedule_cron: {expression!r} is not a valid cron expression") from exc
    expanded = parsed.expanded
    restricted_days = expanded[2][0] != "*" and expanded[4][0] != "*"
    minute, hour, dom, month, dow = (
        _values(list(values), bounds) for values, bounds in zip(expanded, _BOUNDS, strict=True)
    )
    return CronFields(minute, hour, dom, month, dow, days_either=restricted_days)


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time after ``after`` (aware) at which the expression fires, in UTC."""
    parsed = croniter(expression, after.astimezone(UTC))
    stamp: float = parsed.get_next(float)
    return datetime.fromtimestamp(stamp, tz=UTC)
