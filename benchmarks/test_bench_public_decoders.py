"""Dense vs compacted eager latency of the public decoder architectures of
tests/compact/public_decoders.py (compacted out of the box, no handlers).

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_public_decoders.py --benchmark-only``.
Per decoder: random keep-masks that remove 50 % of the MACs (``masks_for_reduction``, seed 0),
``compact`` (verified exact, channels-last), then dense and compacted forward passes in turns
(``interleaved_medians``, 7 rounds) at the input size below, under ``torch.no_grad``.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.interleaved import interleaved_medians
from lwdvc_kernels import channel_groups, compact, count_macs
from tests.compact.helpers import masks_for_reduction
from tests.compact.public_decoders import DECODERS

REDUCTION = 0.5
#: input spatial size per decoder (attention ones smaller: their maps grow with positions squared)
SIZES = {"latent_image_decoder": (24, 24), "nonlocal_attention_block": (32, 32)}
DEFAULT_SIZE = (64, 64)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_public_decoder_dense_vs_compacted(benchmark, record_median, name):
    build, shape = DECODERS[name]
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(shape[0], shape[1], *SIZES.get(name, DEFAULT_SIZE))
    analysis = channel_groups(model, x[..., :8, :8])
    masks = masks_for_reduction(analysis, REDUCTION, seed=0)
    small = compact(model, x[..., :8, :8], masks=masks, verify=True)

    def run(module):
        def step():
            with torch.no_grad():
                return module(x)
        return step

    benchmark.group = f"public decoder {name} {x.shape[-1]}x{x.shape[-2]}"
    medians = benchmark.pedantic(interleaved_medians, args=({"dense": run(model), "compacted": run(small)}, 7),
                                 rounds=1, iterations=1)
    dense_macs, small_macs = count_macs(model, x), count_macs(small, x)
    for provider, median in medians.items():
        record_median(benchmark, benchmark.group, provider, baseline="dense", median=median,
                      mac_ratio=(small_macs if provider == "compacted" else dense_macs) / dense_macs)
