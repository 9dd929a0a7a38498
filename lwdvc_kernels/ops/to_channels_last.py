"""``to_channels_last``: NCHW -> channels_last layout change fused with a dtype cast.

The CPU strategy of :func:`lwdvc_kernels.optimization.optimize` converts every 4-D input of a
module once; ATen's strided copy does that element by element, the C++ kernel tile by tile.
Backends: ``"auto"`` (C++ CPU kernel; CUDA through ATen's copy) and ``"reference"``.
"""
from __future__ import annotations

import torch

from lwdvc_kernels.ops.fused_validation import check_to_channels_last_args
from lwdvc_kernels.ops.reference.to_channels_last import to_channels_last_reference
from lwdvc_kernels.ops.registry import AUTO, check_backend


def to_channels_last_kernel(input, dtype):
    check_to_channels_last_args(input, dtype)
    return to_channels_last_reference(input, dtype)


def to_channels_last_fake(input, dtype):
    check_to_channels_last_args(input, dtype)
    return torch.empty(input.shape, dtype=dtype or input.dtype, device=input.device,
                       memory_format=torch.channels_last)


def to_channels_last(input: torch.Tensor, dtype: torch.dtype | None = None, *, backend: str = "auto") -> torch.Tensor:
    """Copy of ``input`` [N, C, H, W] in channels_last (and ``dtype``), in one pass.

    Args:
        input: floating [N, C, H, W], any strides.
        dtype: floating output dtype, or None to keep the input's.
        backend: ``"auto"`` or ``"reference"``.

    Returns:
        [N, C, H, W], channels_last-contiguous, always a new tensor.
    """
    check_backend("to_channels_last", backend)
    check_to_channels_last_args(input, dtype)
    if backend == AUTO:
        return torch.ops.lwdvc.to_channels_last(input, dtype)
    return to_channels_last_reference(input, dtype)
