"""Latency vs MACs of the optimised compacted decoders for round_to 1, 4, 8, 16 (CPU, 448x256).

``round_to`` restores pruned channels until every channel group keeps a multiple of it, so MACs
rise a little; the question is whether latency falls anyway (channel counts that suit the vector
width). Extras: decoder GMACs, speed-up against round_to=1 (the row's ratio) and MACs relative to
round_to=1. Run: ``pytest benchmarks/test_bench_optimize_round_to.py --benchmark-only``.
"""
from __future__ import annotations

import pytest

from benchmarks.optimize_cases import CODECS, configure_process, decoder, macs, runner

configure_process()

ROUND_TO = (1, 4, 8, 16)
HEIGHT, WIDTH = 256, 448
CASES = [(c, dt, r) for c in CODECS for dt in ("fp32", "bf16") for r in ROUND_TO]


@pytest.mark.parametrize("codec,dt,round_to", CASES, ids=[f"{c}-{dt}-round{r}" for c, dt, r in CASES])
def test_round_to(benchmark, record_median, codec, dt, round_to):
    step = runner(codec, HEIGHT, WIDTH, f"compacted-opt-{dt}", round_to=round_to)
    outs = benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    assert len(outs) == len(decoder(codec, HEIGHT, WIDTH, round_to))
    gmacs = macs(codec, HEIGHT, WIDTH, "compacted", round_to) / 1e9
    record_median(benchmark, f"round_to {codec} {dt} 448x256", f"round_to={round_to:<2d}", baseline="round_to=1 ",
                  gmacs=gmacs, macs_vs_round1=gmacs * 1e9 / macs(codec, HEIGHT, WIDTH, "compacted", 1),
                  mac_reduction=1 - gmacs * 1e9 / macs(codec, HEIGHT, WIDTH, "dense", round_to))
