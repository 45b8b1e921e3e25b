"""Duration models: how long an activity or a human wait takes, for simulation and emulation.

All parameters are in seconds. A model is a small frozen pydantic object with ``sample(rng)``
and ``mean()``, so the simulator, the service's latency emulation and calibration share them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    # Only for annotations: importing numpy costs start-up time the loaders do not need.
    import numpy as np

__all__ = [
    "DurationModel",
    "Empirical",
    "Exponential",
    "Fixed",
    "Gamma",
    "LogNormal",
]


class _Base(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Fixed(_Base):
    """Always the same duration."""

    dist: Literal["fixed"] = "fixed"
    seconds: float = Field(ge=0)

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one duration in seconds."""
        return self.seconds

    def mean(self) -> float:
        """Expected duration in seconds."""
        return self.seconds


class Exponential(_Base):
    """Exponential with the given mean (memoryless service times)."""

    dist: Literal["exponential"] = "exponential"
    mean_s: float = Field(gt=0)

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one duration in seconds."""
        return float(rng.exponential(self.mean_s))

    def mean(self) -> float:
        """Expected duration in seconds."""
        return self.mean_s


class LogNormal(_Base):
    """Log-normal given by its median and the sigma of the underlying normal."""

    dist: Literal["lognormal"] = "lognormal"
    median_s: float = Field(gt=0)
    sigma: float = Field(gt=0, le=5)

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one duration in seconds."""
        return float(rng.lognormal(math.log(self.median_s), self.sigma))

    def mean(self) -> float:
        """Expected duration in seconds."""
        return self.median_s * math.exp(self.sigma**2 / 2)


class Gamma(_Base):
    """Gamma given by shape and mean."""

    dist: Literal["gamma"] = "gamma"
    shape: float = Field(gt=0)
    mean_s: float = Field(gt=0)

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one duration in seconds."""
        return float(rng.gamma(self.shape, self.mean_s / self.shape))

    def mean(self) -> float:
        """Expected duration in seconds."""
        return self.mean_s


class Empirical(_Base):
    """Resample observed durations uniformly."""

    dist: Literal["empirical"] = "empirical"
    values_s: tuple[float, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _non_negative(self) -> Empirical:
        if any(v < 0 or not math.isfinite(v) for v in self.values_s):
            raise ValueError("values_s must be finite and non-negative")
        return self

    def sample(self, rng: np.random.Generator) -> float:
        """Draw one duration in seconds."""
        return float(self.values_s[int(rng.integers(len(self.values_s)))])

    def mean(self) -> float:
        """Expected duration in seconds."""
        return float(sum(self.values_s) / len(self.values_s))


DurationModel = Annotated[
    Fixed | Exponential | LogNormal | Gamma | Empirical, Field(discriminator="dist")
]
