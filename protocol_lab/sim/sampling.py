"""Samplers: named distributions drawn in blocks from their own random stream.

The distributions are the duration models of :mod:`protocol_lab.domain.durations` (Fixed,
Exponential, LogNormal, Gamma, Empirical). A :class:`Sampler` draws them a block at a time with
numpy and hands values out one by one, which keeps per-event cost low; each sampler owns a child
generator spawned from the run's generator, so one seed fixes every stream and a change in one
part of the model does not shift the draws of another (common random numbers across scenarios).
"""

from __future__ import annotations

import math

import numpy as np

from protocol_lab.domain.durations import (
    DurationModel,
    Empirical,
    Exponential,
    Fixed,
    Gamma,
    LogNormal,
)

__all__ = ["Sampler", "UniformSampler", "draw_block"]

_BLOCK = 512


def draw_block(model: DurationModel, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` draws of ``model`` in seconds, vectorised (same law as ``model.sample``)."""
    if isinstance(model, Fixed):
        return np.full(size, model.seconds, dtype=np.float64)
    if isinstance(model, Exponential):
        return rng.exponential(model.mean_s, size)
    if isinstance(model, LogNormal):
        return rng.lognormal(math.log(model.median_s), model.sigma, size)
    if isinstance(model, Gamma):
        return rng.gamma(model.shape, model.mean_s / model.shape, size)
    if isinstance(model, Empirical):
        values = np.asarray(model.values_s, dtype=np.float64)
        return values[rng.integers(len(values), size=size)]
    raise TypeError(f"unknown duration model {type(model).__name__}")


class Sampler:
    """Draw durations (seconds) of one named distribution, a block at a time."""

    __slots__ = ("_buf", "_i", "_model", "_rng", "constant")

    def __init__(self, model: DurationModel, rng: np.random.Generator) -> None:
        self._model = model
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0
        self.constant: float | None = model.seconds if isinstance(model, Fixed) else None

    @property
    def model(self) -> DurationModel:
        """The distribution drawn."""
        return self._model

    def __call__(self) -> float:
        """The next duration in seconds."""
        if self.constant is not None:
            return self.constant
        i = self._i
        buf = self._buf
        if i >= len(buf):
            buf = self._buf = draw_block(self._model, self._rng, _BLOCK).tolist()
            i = 0
        self._i = i + 1
        return buf[i]


class UniformSampler:
    """Uniform numbers on [0, 1), a block at a time (for failures and decisions)."""

    __slots__ = ("_buf", "_i", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        """The next uniform number."""
        i = self._i
        buf = self._buf
        if i >= len(buf):
            buf = self._buf = self._rng.random(_BLOCK).tolist()
            i = 0
        self._i = i + 1
        return buf[i]
