"""Triton kernel of conv2d_epilogue: implicit-GEMM convolution with a fused epilogue.

Imported only when asked for. Runs on CUDA tensors, or on CPU tensors under
``TRITON_INTERPRET=1`` (tests, small sizes). GEMM view per group: rows are output pixels
(N * Ho * Wo), columns output channels, the reduction runs over (ci, kh, kw); the input patch is
gathered while loading (no im2col buffer). The epilogue adds the bias, applies the activation,
adds the residual and stores straight into the PixelShuffle layout.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch._prims_common import suggest_memory_format

from lwdvc_kernels.ops.fused_validation import ACTIVATIONS

BLOCK_M, BLOCK_N, BLOCK_K = 32, 16, 16


@triton.jit
def _conv2d_epilogue_kernel(
    x_ptr, w_ptr, b_ptr, r_ptr, out_ptr,
    batch, cin_g, height, width, cout_g, out_h, out_w, kh_size, kw_size,
    stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, negative_slope,
    UPSCALE: tl.constexpr, ACTIVATION: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
    IEEE: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_m, pid_n, group = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    groups = tl.num_programs(2)
    pixels = out_h * out_w
    reduction = cin_g * kh_size * kw_size
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)            # flattened (image, pixel)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)            # output channel within the group
    row_ok, col_ok = rows < batch * pixels, cols < cout_g
    image, pixel = rows // pixels, rows % pixels
    ho, wo = pixel // out_w, pixel % out_w
    x_base = (image * groups + group) * cin_g * height * width
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, reduction, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        k_ok = kk < reduction
        ci, kh, kw = kk // (kh_size * kw_size), (kk // kw_size) % kh_size, kk % kw_size
        hi = ho[:, None] * stride_h - pad_h + kh[None, :] * dil_h
        wi = wo[:, None] * stride_w - pad_w + kw[None, :] * dil_w
        inside = (hi >= 0) & (hi < height) & (wi >= 0) & (wi < width) & row_ok[:, None] & k_ok[None, :]
        a = tl.load(x_ptr + x_base[:, None] + (ci[None, :] * height + hi) * width + wi, mask=inside, other=0.0)
        oc = group * cout_g + cols
        b = tl.load(w_ptr + oc[None, :] * reduction + kk[:, None], mask=k_ok[:, None] & col_ok[None, :], other=0.0)
        if IEEE:
            acc += tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(a, b)
    oc = group * cout_g + cols
    if HAS_BIAS:
        acc += tl.load(b_ptr + oc, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if ACTIVATION == 1:
        acc = tl.where(acc < 0, 0.0, acc)  # keeps NaN, as F.relu does
    elif ACTIVATION == 2:
        acc = tl.where(acc > 0, acc, acc * negative_slope)
    rr: tl.constexpr = UPSCALE * UPSCALE
    out_c = oc // rr
    sub = oc % rr
    oh = ho[:, None] * UPSCALE + (sub // UPSCALE)[None, :]
    ow = wo[:, None] * UPSCALE + (sub % UPSCALE)[None, :]
    channels = groups * cout_g // rr
    offsets = ((image[:, None] * channels + out_c[None, :]) * (out_h * UPSCALE) + oh) * (out_w * UPSCALE) + ow
    ok = row_ok[:, None] & col_ok[None, :]
    if HAS_RESIDUAL:
        acc += tl.load(r_ptr + offsets, mask=ok, other=0.0).to(tl.float32)
    tl.store(out_ptr + offsets, acc.to(out_ptr.dtype.element_ty), mask=ok)


def _dot_in_float32(dtype: torch.dtype) -> bool:
    """float32 products in IEEE precision (no TF32); bfloat16 too under the interpreter, whose
    bfloat16 ``tl.dot`` returns wrong values (seen with triton 3.8)."""
    return dtype == torch.float32 or (dtype == torch.bfloat16 and os.environ.get("TRITON_INTERPRET") == "1")


def conv2d_epilogue_triton(input, weight, bias, residual, stride, padding, dilation, groups, activation,
                           negative_slope, upscale, shape) -> torch.Tensor:
    """Same contract as :func:`lwdvc_kernels.ops.conv2d_epilogue` (float16, bfloat16, float32), for
    validated arguments whose output shape (N, C, H, W) after the shuffle is ``shape``."""
    if input.dtype == torch.float64:
        raise TypeError("conv2d_epilogue: the triton backend supports float16, bfloat16 and float32, got torch.float64")
    x, w = input.contiguous(), weight.contiguous()
    out = torch.empty(shape, dtype=x.dtype, device=x.device)
    n, cin = x.shape[:2]
    cout, _, kh, kw = w.shape
    out_h, out_w = shape[2] // upscale, shape[3] // upscale
    cout_g = cout // groups
    grid = (triton.cdiv(n * out_h * out_w, BLOCK_M), triton.cdiv(cout_g, BLOCK_N), groups)
    _conv2d_epilogue_kernel[grid](
        x, w, bias.contiguous() if bias is not None else x, residual.contiguous() if residual is not None else x, out,
        n, cin // groups, x.size(2), x.size(3), cout_g, out_h, out_w, kh, kw,
        stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], float(negative_slope),
        UPSCALE=upscale, ACTIVATION=ACTIVATIONS.index(activation), HAS_BIAS=bias is not None,
        HAS_RESIDUAL=residual is not None, IEEE=_dot_in_float32(x.dtype),
        BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K,
    )
    return out.contiguous(memory_format=suggest_memory_format(input))
