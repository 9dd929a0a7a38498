"""Optimised decoders with trained-like masks: groups at the pruner's floor or whole (CPU, 448x256).

A trained pruner leaves most channel groups either at its floor or whole (docs/results/demo.md),
unlike the uniform synthetic masks of ``test_bench_optimize.py``: the floor groups' convs have
few output channels (7 of 64), which oneDNN pads to its 16-wide blocks. Per codec, timed in
turns (``interleaved_medians``, 5 rounds): the dense eager decoder, the optimised compacted
decoder with oneDNN only (``ops.narrow_conv_in_epilogue(False)``), and the same optimised
modules with ``conv2d_narrow`` where it pays (the default). Extras: GMACs, MAC reduction and
speed-up efficiency against the dense eager decoder (speed-up / MAC ratio).
Run: ``pytest benchmarks/test_bench_floor_masks.py --benchmark-only``.
"""
from __future__ import annotations

import pytest

from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import CODECS, configure_process, decoder, macs, runner
from lwdvc_kernels import ops

configure_process()

HEIGHT, WIDTH = 256, 448


@pytest.mark.parametrize("codec", CODECS)
def test_floor_masks(benchmark, record_median, codec):
    group = f"floor masks {codec} fp32 448x256"
    steps = {
        "dense eager": runner(codec, HEIGHT, WIDTH, "dense-eager-fp32", masks="floor"),
        "opt oneDNN only": runner(codec, HEIGHT, WIDTH, "compacted-opt-fp32", masks="floor", narrow_conv=False),
    }
    if ops.narrow_conv_supported():
        steps["opt + narrow"] = runner(codec, HEIGHT, WIDTH, "compacted-opt-fp32", masks="floor")
    benchmark.group = group
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 5), rounds=1, iterations=1)
    dense_macs = macs(codec, HEIGHT, WIDTH, "dense", masks="floor")
    compacted = macs(codec, HEIGHT, WIDTH, "compacted", masks="floor")
    assert len(steps["opt oneDNN only"]()) == len(decoder(codec, HEIGHT, WIDTH, 1, "floor"))
    for name, median in medians.items():
        kept = dense_macs if name == "dense eager" else compacted
        record_median(benchmark, group, name, baseline="dense eager", median=median, gmacs=kept / 1e9,
                      mac_reduction=1 - kept / dense_macs,
                      efficiency=medians["dense eager"] / median / (dense_macs / kept))
