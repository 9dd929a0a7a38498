"""Whole P-frame decode (``model.decode``), dense vs compacted vs optimised, CPU float32, 448x256.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_decode_path.py --benchmark-only``.
The variants of a codec (``decode_paths.VARIANTS``; ``optimised_r16``: the optimised modules of
round_to=16 masks at the same MAC reduction; ``optimised_floor``: of floor-or-whole masks, the
shape trained masks have) are timed in turns (``interleaved_medians``, 7 rounds); tensors
flow between the decoder modules as they do in decoding. Efficiency = speed-up / the decoder
modules' MAC ratio (each module counted once on its example input, as in the other benchmarks).
The compacted and optimised reconstructions are checked against each other (float32).
"""
from __future__ import annotations

import pytest

from benchmarks.compacted_decoders import mac_ratio
from benchmarks.decode_paths import MASKS, VARIANTS, decode_step
from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import CODECS, configure_process, decoder

configure_process()

HEIGHT, WIDTH = 256, 448


@pytest.mark.parametrize("codec", CODECS)
def test_decode_path(benchmark, record_median, codec):
    steps = {v: decode_step(codec, HEIGHT, WIDTH, v) for v in VARIANTS}
    compacted, fast = steps["compacted"](), steps["optimised"]()
    error = float((compacted - fast).norm() / compacted.norm())
    assert error <= 1e-4, f"optimised decode differs from compacted by {error:.2e}"
    benchmark.group = f"decode path {codec} 448x256"
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 7), rounds=1, iterations=1)
    for variant, median in medians.items():
        r = 1.0 if variant == "dense" else mac_ratio(list(decoder(codec, HEIGHT, WIDTH, *MASKS[variant])))
        record_median(benchmark, benchmark.group, variant, baseline="dense", median=median, mac_ratio=r,
                      efficiency=medians["dense"] / median / r)
