"""Triton kernel of channel_norm (imported only when asked for)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import triton
import triton.language as tl

BLOCK = 256


@triton.jit
def _channel_sumsq_kernel(x_ptr, sumsq_ptr, outer, channels, inner, BLOCK: tl.constexpr):
    """sumsq[c] += sum over [outer, inner] of x[o, c, i]^2; one program per channel c, in float64
    (float32 squares overflow above 1.8e19 and float32 sums stop growing at 2^24)."""
    c = tl.program_id(0)
    per_channel = outer * inner
    acc = tl.zeros([BLOCK], dtype=tl.float64)
    for start in range(0, per_channel, BLOCK):
        j = start + tl.arange(0, BLOCK)
        valid = j < per_channel
        o = j // inner
        x = tl.load(x_ptr + (o * channels + c) * inner + (j - o * inner), mask=valid, other=0.0)
        x = x.to(tl.float64)
        acc += x * x
    tl.store(sumsq_ptr + c, tl.load(sumsq_ptr + c) + tl.sum(acc, axis=0))


def channel_norm_triton(weights: Sequence[torch.Tensor], dims: Sequence[int]) -> torch.Tensor:
    """float32 [C] per-channel L2 norm over validated ``weights`` / wrapped ``dims``."""
    channels = weights[0].size(dims[0])
    sumsq = torch.zeros(channels, dtype=torch.float64, device=weights[0].device)
    for w, dim in zip(weights, dims):
        w = w.contiguous()
        outer = 1
        for size in w.shape[:dim]:
            outer *= size
        inner = w.numel() // (outer * channels)
        _channel_sumsq_kernel[(channels,)](w, sumsq, outer, channels, inner, BLOCK=BLOCK)
    return sumsq.sqrt().to(torch.float32)
