"""The benchmarks' interleaved timer: turns rotate, medians belong to the right step."""
from __future__ import annotations

import time

import pytest

from benchmarks.interleaved import interleaved_medians


def test_turns_rotate_and_medians_match_each_step():
    calls: list[str] = []

    def step(name: str, seconds: float):
        def run():
            calls.append(name)
            time.sleep(seconds)
        return run

    medians = interleaved_medians({"a": step("a", 0.001), "b": step("b", 0.012), "c": step("c", 0.004)},
                                  rounds=4, warmup_rounds=1)
    assert list(medians) == ["a", "b", "c"]
    assert medians["a"] < medians["c"] < medians["b"]
    assert 0.012 <= medians["b"] < 0.1
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    timed = calls[3:]
    assert [timed[i * 3] for i in range(4)] == ["a", "b", "c", "a"]  # each round starts one later
    assert sorted(timed) == ["a"] * 4 + ["b"] * 4 + ["c"] * 4


def test_rejects_no_rounds_or_no_steps():
    with pytest.raises(ValueError, match="rounds"):
        interleaved_medians({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="steps"):
        interleaved_medians({}, rounds=3)
