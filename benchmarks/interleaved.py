"""Interleaved timing: several implementations measured round-robin in one loop.

On a shared 2-core VM, wall-clock speed drifts by 10-40% over minutes (host load, page
placement); timing one implementation after another lets that drift into their ratios. Running
them in turns (one call each per round, the starting one rotating) exposes all of them to the
same drift, so ratios of their medians hold even when absolute times move.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def interleaved_medians(steps: Mapping[str, Callable[[], object]], rounds: int,
                        warmup_rounds: int = 1) -> dict[str, float]:
    """Median seconds per call of every step, measured in turns.

    Args:
        steps: ``{name: no-argument callable}``; each call is timed whole.
        rounds: timed calls per step (>= 1).
        warmup_rounds: untimed calls per step first (oneDNN primitive creation, allocations).

    Returns:
        ``{name: median seconds}`` in the order of ``steps``.
    """
    if rounds < 1 or not steps:
        raise ValueError(f"interleaved_medians needs rounds >= 1 and steps, got {rounds} and {list(steps)}")
    names = list(steps)
    for _ in range(warmup_rounds):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(times[name]) for name in names}
