"""Decoder latency, dense vs compacted, CPU float32, frame 448x256, at 65% MAC reduction.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_compact.py --benchmark-only``.
For each codec the variants run side by side in one process:

- ``dense``: the dense decoder as the codec builds it (NCHW weights and inputs);
- ``dense_nhwc``: the same dense decoder with channels-last weights (its best eager layout);
- ``compact_nchw``: ``compact(..., memory_format=torch.contiguous_format)``, round_to=1;
- ``compact``: ``compact(...)`` with its defaults (channels-last weights), round_to=1;
- ``compact_r8`` / ``compact_r16``: kept counts rounded up to multiples of 8 / 16, with the
  synthetic budget itself rounding-aware so that every compacted variant loses 65% of the MACs.

The whole decoder is every module of ``decoder_modules()`` run once on its example input (NCHW,
as the codec passes it). The variants of a codec are timed in turns (``interleaved_medians``,
7 rounds), so drift of the machine's speed reaches all of them alike. The ratio table at the end
reports speed-up = dense median / variant median and efficiency = speed-up / (dense MACs /
compacted MACs); docs/results/compact.md also gives the efficiencies against ``dense_nhwc``.
"""
from __future__ import annotations

import copy
import functools

import pytest
import torch

from benchmarks.compacted_decoders import build_decoder, mac_ratio
from benchmarks.interleaved import interleaved_medians
from lwdvc_kernels.compaction import set_memory_format

pytest.importorskip("lwdvc.models", reason="codec models not installed")

HEIGHT, WIDTH, REDUCTION = 256, 448, 0.65
CODECS = ("dcvc", "dcvc_hem", "fvc")
VARIANTS = {  # name: (round_to, compacted memory format)
    "compact_nchw": (1, torch.contiguous_format),
    "compact": (1, torch.channels_last),
    "compact_r8": (8, torch.channels_last),
    "compact_r16": (16, torch.channels_last),
}
_CACHE: dict[tuple, list] = {}


def _decoder(codec: str, round_to: int, memory_format: torch.memory_format):
    key = (codec, round_to, memory_format)
    if key not in _CACHE:
        _CACHE[key] = build_decoder(codec, HEIGHT, WIDTH, REDUCTION, round_to=round_to, memory_format=memory_format)
    return _CACHE[key]


def _nets(codec: str, variant: str) -> tuple[list, float]:
    """The variant's modules (with their inputs) and its MAC ratio."""
    if variant.startswith("dense"):
        modules = _decoder(codec, 1, torch.contiguous_format)
        nets = [m.dense for m in modules]
        if variant == "dense_nhwc":
            nets = [set_memory_format(copy.deepcopy(n), torch.channels_last) for n in nets]
        return list(zip(nets, [m.inputs for m in modules])), 1.0
    modules = _decoder(codec, *VARIANTS[variant])
    return [(m.compacted, m.inputs) for m in modules], mac_ratio(modules)


def _run(nets) -> None:
    with torch.inference_mode():
        for net, inputs in nets:
            net(*inputs)


@pytest.mark.parametrize("codec", CODECS)
def test_decoder_latency(benchmark, record_median, codec):
    variants = {v: _nets(codec, v) for v in ("dense", "dense_nhwc", *VARIANTS)}
    steps = {v: functools.partial(_run, nets) for v, (nets, _) in variants.items()}
    benchmark.group = f"compact/{codec}"
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 7), rounds=1, iterations=1)
    dense_gmacs = sum(m.dense_macs for m in _decoder(codec, 1, torch.contiguous_format)) / 1e9
    for variant, (_, ratio) in variants.items():
        record_median(benchmark, f"compact/{codec}", variant, baseline="dense", median=medians[variant],
                      dense_GMACs=dense_gmacs, mac_ratio=ratio)
