"""Convolutions with few output channels on CPU: oneDNN (``F.conv2d``) vs ``conv2d_narrow``.

A trained pruning mask leaves whole channel groups at the pruner's floor (e.g. 7 of 64
channels, or 2 of 16 in the width-0.25 demo model): their producing convs have 1-8 output
channels, which oneDNN computes in 16-wide blocks. Shapes: 3x3 convs from 64 and 128 input
channels at full 448x256 resolution, a 1x1 conv, and one where oneDNN stays ahead (23 input
channels: the kernel's lanes are a third empty; ``conv2d_epilogue`` keeps oneDNN there).
Providers: ``onednn-fp32`` (the baseline, channels_last) and ``narrow-fp32`` (same input).
Run: ``pytest benchmarks/test_bench_narrow_conv.py --benchmark-only``.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lwdvc_kernels import ops

# (label, in channels, out channels, kernel)
SHAPES = [
    ("3x3 64->2", 64, 2, 3),
    ("3x3 64->4", 64, 4, 3),
    ("3x3 64->7", 64, 7, 3),
    ("3x3 128->3", 128, 3, 3),
    ("1x1 64->2", 64, 2, 1),
    ("3x3 23->7", 23, 7, 3),
]
PROVIDERS = ["onednn-fp32", "narrow-fp32"]
HEIGHT, WIDTH = 256, 448


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0].replace(" ", "-").replace(">", "") for s in SHAPES])
def test_narrow_conv(benchmark, record_median, shape, provider):
    label, cin, cout, k = shape
    if provider.startswith("narrow") and not ops.narrow_conv_supported():
        pytest.skip("needs a CPU with AVX-512 and the compiled extension")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, cin, HEIGHT, WIDTH, generator=g).contiguous(memory_format=torch.channels_last)
    weight = (torch.randn(cout, cin, k, k, generator=g) / (cin * k)).contiguous(memory_format=torch.channels_last)
    bias = torch.randn(cout, generator=g)

    def step():
        with torch.inference_mode():
            if provider.startswith("onednn"):
                return F.conv2d(x, weight, bias, padding=k // 2)
            return ops.conv2d_narrow(x, weight, bias, padding=k // 2)

    out = benchmark.pedantic(step, rounds=15, warmup_rounds=2)
    assert out.shape == (1, cout, HEIGHT, WIDTH)
    gmacs = cin * cout * k * k * HEIGHT * WIDTH / 1e9
    extra = {"gmacs": gmacs}
    if benchmark.stats is not None:
        extra["gmac_per_s"] = gmacs / benchmark.stats.stats.median
    record_median(benchmark, f"narrow conv {label} [1,{cin},{HEIGHT},{WIDTH}]", provider,
                  baseline="onednn-fp32", **extra)
