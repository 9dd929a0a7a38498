"""Triton kernel of the fused gdn op (imported only when asked for).

One program per block of pixels of one image: x [C, P] is loaded once, squared, multiplied by
gamma (``tl.dot``, BLOCK_I output channels at a time) and the sqrt and multiply/divide are applied
before the single store. Runs on CUDA tensors, or on CPU tensors under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch._prims_common import suggest_memory_format

BLOCK_P = 16


@triton.jit
def _gdn_kernel(x_ptr, beta_ptr, gamma_ptr, out_ptr, channels, pixels, INVERSE: tl.constexpr,
                BLOCK_C: tl.constexpr, BLOCK_I: tl.constexpr, BLOCK_P: tl.constexpr):
    image, pid_p = tl.program_id(0), tl.program_id(1)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    c = tl.arange(0, BLOCK_C)
    base = image * channels * pixels
    ok = (c[:, None] < channels) & (p[None, :] < pixels)
    x = tl.load(x_ptr + base + c[:, None] * pixels + p[None, :], mask=ok, other=0.0).to(tl.float32)
    xsq = x * x
    for i0 in range(0, BLOCK_C, BLOCK_I):
        i = i0 + tl.arange(0, BLOCK_I)
        i_ok = i < channels
        gamma = tl.load(gamma_ptr + i[:, None] * channels + c[None, :], mask=i_ok[:, None] & (c[None, :] < channels),
                        other=0.0).to(tl.float32)
        norm = tl.dot(gamma, xsq, input_precision="ieee")
        norm += tl.load(beta_ptr + i, mask=i_ok, other=1.0).to(tl.float32)[:, None]
        xi = tl.load(x_ptr + base + i[:, None] * pixels + p[None, :], mask=i_ok[:, None] & (p[None, :] < pixels),
                     other=0.0).to(tl.float32)
        root = tl.sqrt(norm)
        y = xi * root if INVERSE else xi / root
        tl.store(out_ptr + base + i[:, None] * pixels + p[None, :], y.to(out_ptr.dtype.element_ty),
                 mask=i_ok[:, None] & (p[None, :] < pixels))


def gdn_triton(input: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, inverse: bool) -> torch.Tensor:
    """Same contract as :func:`lwdvc_kernels.ops.gdn` (float16, bfloat16, float32), for validated
    arguments."""
    if input.dtype == torch.float64:
        raise TypeError("gdn: the triton backend supports float16, bfloat16 and float32, got torch.float64")
    x = input.contiguous()
    out = torch.empty_like(x)
    n, c, h, w = x.shape
    block_c = max(16, triton.next_power_of_2(c))
    grid = (n, triton.cdiv(h * w, BLOCK_P))
    _gdn_kernel[grid](x, beta.float().contiguous(), gamma.float().contiguous(), out, c, h * w,
                      INVERSE=bool(inverse), BLOCK_C=block_c, BLOCK_I=min(32, block_c), BLOCK_P=BLOCK_P)
    return out.contiguous(memory_format=suggest_memory_format(input))
