"""Sigmoid schedules over training steps: gradient decay beta(t), distillation weight lambda3(t)
and the pruning-target ramp.

Shared by ``lwdvc.prune`` (beta, the target ramp) and ``lwdvc.distill`` (lambda3), which do not
import each other; ``lwdvc.prune`` re-exports them as part of its API.

All schedules are the same normalised sigmoid. With ``s(t) = sigmoid(k * (t / T - c))``::

    decay(t) = (s(T) - s(t)) / (s(T) - s(0))      # exactly 1 at t = 0, exactly 0 at t >= T
    value(t) = end + (start - end) * decay(t)

so ``beta(t) = 1 - sigmoid(k * (t / T - c))`` up to the affine normalisation that pins the end
points (with k = 10, c = 0.5 the raw formula gives 0.993 and 0.007 at the ends instead of 1 and 0).
``k`` is the steepness, ``c`` the centre as a fraction of ``T``; ``t >= T`` holds ``end``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SigmoidSchedule", "beta_schedule", "lambda3_schedule", "target_ramp"]


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass(frozen=True)
class SigmoidSchedule:
    """A value moving from ``start`` (t = 0) to ``end`` (t >= steps) along a sigmoid.

    Attributes:
        steps: T, the number of steps the transition takes (> 0).
        start: value at t = 0.
        end: value at t >= T.
        steepness: k (> 0); larger is a sharper transition.
        center: c, where the transition is half done, as a fraction of T (in [0, 1]).
    """

    steps: int
    start: float = 1.0
    end: float = 0.0
    steepness: float = 10.0
    center: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"SigmoidSchedule: steps must be a positive int, got {self.steps!r}")
        if not self.steepness > 0:
            raise ValueError(f"SigmoidSchedule: steepness must be > 0, got {self.steepness!r}")
        if not 0.0 <= self.center <= 1.0:
            raise ValueError(f"SigmoidSchedule: center must be in [0, 1], got {self.center!r}")

    def progress(self, step: int) -> float:
        """Fraction of the transition done at ``step``: 0 at t <= 0, 1 at t >= T, sigmoid between."""
        if step <= 0:
            return 0.0
        if step >= self.steps:
            return 1.0
        k, c = self.steepness, self.center
        s0, s1 = _sigmoid(-k * c), _sigmoid(k * (1.0 - c))
        return (_sigmoid(k * (step / self.steps - c)) - s0) / (s1 - s0)

    def __call__(self, step: int) -> float:
        return self.end + (self.start - self.end) * (1.0 - self.progress(step))


def beta_schedule(steps: int, steepness: float = 10.0, center: float = 0.5) -> SigmoidSchedule:
    """Gradient decay factor: 1 (straight-through exploration) -> 0 (plain masking)."""
    return SigmoidSchedule(steps, 1.0, 0.0, steepness, center)


def lambda3_schedule(steps: int, start: float = 1.0, steepness: float = 10.0,
                     center: float = 0.5) -> SigmoidSchedule:
    """Distillation weight: ``start`` -> 0."""
    return SigmoidSchedule(steps, start, 0.0, steepness, center)


def target_ramp(steps: int, target: float, steepness: float = 10.0,
                center: float = 0.5) -> SigmoidSchedule:
    """Current MAC-reduction target: 0 -> ``target`` (held after ``steps``)."""
    return SigmoidSchedule(steps, 0.0, target, steepness, center)
