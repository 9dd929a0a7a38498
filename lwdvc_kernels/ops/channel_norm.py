"""``channel_norm``: per-channel L2 norm of one weight or of several coupled weights.

Used for channel importance: a channel group that spans several layers (a residual stream,
the producers of a concatenation) is scored over every weight that writes it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops.reference.channel_norm import channel_norm_reference
from lwdvc_kernels.ops.registry import AUTO, REFERENCE, check_backend
from lwdvc_kernels.ops.validation import check_channel_norm_args


def channel_norm_fake(weights, dims):
    wrapped = check_channel_norm_args(weights, dims)
    return weights[0].new_empty((weights[0].size(wrapped[0]),), dtype=torch.float32)


def channel_norm_kernel(weights, dims):
    return channel_norm_reference(weights, check_channel_norm_args(weights, dims))


def channel_norm(
    weights: torch.Tensor | Sequence[torch.Tensor],
    dims: int | Sequence[int] = 0,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Per-channel L2 norm.

    Args:
        weights: one tensor, or a list of tensors sharing a channel axis of length C.
        dims: the channel dim of each tensor (one int applies to all).
        backend: ``"auto"`` (C++ CPU / CUDA), ``"reference"`` or ``"triton"``.

    Returns:
        float32 [C], detached: ``sqrt(sum over weights and other dims of w ** 2)``.
    """
    check_backend("channel_norm", backend)
    if isinstance(weights, torch.Tensor):
        weights = [weights]
    weights = [w.detach() if isinstance(w, torch.Tensor) else w for w in weights]
    dims = [dims] * len(weights) if isinstance(dims, int) else list(dims)
    wrapped = check_channel_norm_args(weights, dims)
    if backend == AUTO:
        return torch.ops.lwdvc.channel_norm(weights, wrapped)
    if backend == REFERENCE:
        return channel_norm_reference(weights, wrapped)
    from lwdvc_kernels.ops.triton.channel_norm import channel_norm_triton

    return channel_norm_triton(weights, wrapped)
