"""Arrival profiles: how ticket intensity varies over the hours of the week.

An :class:`HourOfWeekProfile` holds 168 relative weights, Monday 00:00 first, in local time of
its time zone. The simulator turns it into a piecewise-constant Poisson rate per UTC hour of the
horizon, so daylight-saving changes and time zones are honoured.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["HOURS_PER_WEEK", "HourOfWeekProfile"]

HOURS_PER_WEEK = 168


class HourOfWeekProfile(BaseModel):
    """Relative arrival intensity per hour of the week (Monday 00:00 first), in local time.

    Give ``weights`` (168 numbers), or the shorthand ``weekday`` (24 numbers used Monday to
    Friday), ``saturday`` and ``sunday`` (24 each; default: the weekday curve). Only the shape
    matters: weights are normalised so that their weekly mean is 1.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    weights: tuple[float, ...] = Field(default=(1.0,) * HOURS_PER_WEEK)

    @model_validator(mode="before")
    @classmethod
    def _expand_days(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or "weekday" not in raw:
            return raw
        data = dict(raw)
        weekday = list(data.pop("weekday"))
        saturday = list(data.pop("saturday", weekday))
        sunday = list(data.pop("sunday", saturday))
        for name, day in (("weekday", weekday), ("saturday", saturday), ("sunday", sunday)):
            if len(day) != 24:
                raise ValueError(f"{name} needs 24 hourly weights, got {len(day)}")
        if "weights" in data:
            raise ValueError("give either weights or weekday/saturday/sunday, not both")
        data["weights"] = tuple(weekday * 5 + saturday + sunday)
        return data

    @model_validator(mode="after")
    def _check(self) -> HourOfWeekProfile:
        if len(self.weights) != HOURS_PER_WEEK:
            raise ValueError(f"weights needs {HOURS_PER_WEEK} values, got {len(self.weights)}")
        if any(w < 0 or not np.isfinite(w) for w in self.weights):
            raise ValueError("weights must be finite and non-negative")
        if sum(self.weights) <= 0:
            raise ValueError("at least one weight must be positive")
        ZoneInfo(self.timezone)
        return self

    @classmethod
    def flat(cls, timezone: str = "UTC") -> HourOfWeekProfile:
        """A constant intensity (homogeneous Poisson arrivals)."""
        return cls(timezone=timezone)

    def normalised(self) -> np.ndarray:
        """The 168 weights scaled to a weekly mean of 1."""
        w = np.asarray(self.weights, dtype=np.float64)
        out: np.ndarray = w / w.mean()
        return out

    def hourly_factors(self, start: datetime, hours: int) -> np.ndarray:
        """The intensity factor of each UTC hour from ``start`` for ``hours`` hours."""
        tz = ZoneInfo(self.timezone)
        w = self.normalised()
        out = np.empty(hours, dtype=np.float64)
        for h in range(hours):
            local = (start + timedelta(hours=h)).astimezone(tz)
            out[h] = w[local.weekday() * 24 + local.hour]
        return out
