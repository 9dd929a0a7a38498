"""Latency vs MACs of the optimised compacted decoders for round_to 1, 4, 8, 16 (CPU, 448x256).

Every group keeps a multiple of ``round_to`` channels, and the synthetic budget counts the
rounded masks (as ``Pruner(round_to=...)`` does), so every ``round_to`` sits at the same 65% MAC
reduction: the question is only whether channel counts that suit the vector width run faster.
Per codec and dtype the dense eager decoder and the four optimised ones are timed in turns
(``interleaved_medians``, 5 rounds). Extras: decoder GMACs, MAC reduction and speed-up
efficiency against the dense eager decoder of the same dtype (speed-up / MAC ratio); the ratio
column is the speed-up against round_to=1.
Run: ``pytest benchmarks/test_bench_optimize_round_to.py --benchmark-only``.
"""
from __future__ import annotations

import pytest

from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import CODECS, configure_process, decoder, macs, runner

configure_process()

ROUND_TO = (1, 4, 8, 16)
HEIGHT, WIDTH = 256, 448
CASES = [(c, dt) for c in CODECS for dt in ("fp32", "bf16")]


@pytest.mark.parametrize("codec,dt", CASES, ids=[f"{c}-{dt}" for c, dt in CASES])
def test_round_to(benchmark, record_median, codec, dt):
    group = f"round_to {codec} {dt} 448x256"
    steps = {"dense": runner(codec, HEIGHT, WIDTH, f"dense-eager-{dt}")}
    steps.update({r: runner(codec, HEIGHT, WIDTH, f"compacted-opt-{dt}", round_to=r) for r in ROUND_TO})
    benchmark.group = group
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 5), rounds=1, iterations=1)
    dense_macs = macs(codec, HEIGHT, WIDTH, "dense")
    record_median(benchmark, group, f"dense eager {dt}", baseline="round_to=1 ", median=medians["dense"],
                  gmacs=dense_macs / 1e9)
    for r in ROUND_TO:
        assert len(steps[r]()) == len(decoder(codec, HEIGHT, WIDTH, r))
        compacted = macs(codec, HEIGHT, WIDTH, "compacted", r)
        record_median(benchmark, group, f"round_to={r:<2d}", baseline="round_to=1 ", median=medians[r],
                      gmacs=compacted / 1e9, mac_reduction=1 - compacted / dense_macs,
                      efficiency=medians["dense"] / medians[r] / (dense_macs / compacted))
