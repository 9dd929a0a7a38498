"""Decoder latency, dense vs compacted, CPU float32, frame 448x256, at 65% MAC reduction.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_compact.py --benchmark-only``.
For each codec the three variants run side by side in one session: ``dense``, ``compact``
(round_to=1) and ``compact_r8`` (kept channel counts rounded up to multiples of 8). The whole
decoder is every module of ``decoder_modules()`` run once on its example input. The ratio
table at the end reports speed-up = dense median / variant median and
efficiency = speed-up / (dense MACs / compacted MACs).
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.compacted_decoders import build_decoder, mac_ratio

pytest.importorskip("lwdvc.models", reason="codec models not installed")

HEIGHT, WIDTH, REDUCTION = 256, 448, 0.65
CODECS = ("dcvc", "dcvc_hem", "fvc")
_CACHE: dict[tuple[str, int], list] = {}


def _decoder(codec: str, round_to: int):
    key = (codec, round_to)
    if key not in _CACHE:
        _CACHE[key] = build_decoder(codec, HEIGHT, WIDTH, REDUCTION, round_to=round_to)
    return _CACHE[key]


def _run(modules, dense: bool) -> None:
    with torch.inference_mode():
        for m in modules:
            (m.dense if dense else m.compacted)(*m.inputs)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("variant", ["dense", "compact", "compact_r8"])
def test_decoder_latency(benchmark, record_median, codec, variant):
    modules = _decoder(codec, 8 if variant == "compact_r8" else 1)
    ratio = mac_ratio(modules)
    benchmark.group = f"compact/{codec}"
    benchmark.pedantic(_run, args=(modules, variant == "dense"), rounds=5, warmup_rounds=1)
    dense_gmacs = sum(m.dense_macs for m in modules) / 1e9
    extra = {"dense_GMACs": dense_gmacs, "mac_ratio": 1.0 if variant == "dense" else ratio}
    record_median(benchmark, f"compact/{codec}", variant, baseline="dense", **extra)
