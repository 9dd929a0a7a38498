"""NCHW -> channels_last on CPU (the boundary conversion of optimised modules): ATen vs the op.

Providers: ``aten`` (``x.to(dtype, memory_format=torch.channels_last)``, the baseline) and
``lwdvc`` (``ops.to_channels_last``), for float32 -> float32 and float32 -> bfloat16, on the
full-resolution inputs of decoder modules at 448x256 (64 and 128 channels), a quarter-resolution
one and an RGB frame. Extra per row: GB/s moved (bytes read + written).
Run: ``pytest benchmarks/test_bench_to_channels_last.py --benchmark-only``.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.optimize_cases import configure_process
from lwdvc_kernels import ops

configure_process()

SHAPES = [(1, 128, 256, 448), (1, 64, 256, 448), (1, 64, 64, 112), (1, 3, 256, 448)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


@pytest.mark.parametrize("provider", ["aten", "lwdvc"])
@pytest.mark.parametrize("dst", list(DTYPES))
@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
def test_to_channels_last(benchmark, record_median, shape, dst, provider):
    if provider == "lwdvc" and ops.EXTENSION is None:
        pytest.skip("needs the compiled extension")
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    dtype = DTYPES[dst]

    def step():
        if provider == "aten":
            return x.to(dtype, memory_format=torch.channels_last)
        return ops.to_channels_last(x, dtype)

    out = benchmark.pedantic(step, rounds=15, warmup_rounds=2)
    assert torch.equal(out, x.to(dtype, memory_format=torch.channels_last))
    moved = x.numel() * (4 + out.element_size())
    extra = {}
    if benchmark.stats is not None:
        extra["gb_per_s"] = moved / benchmark.stats.stats.median / 1e9
    record_median(benchmark, f"to_channels_last fp32->{dst} {list(shape)}", provider, baseline="aten", **extra)
