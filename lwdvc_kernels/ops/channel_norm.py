"""``channel_norm``: per-channel L2 norm of one weight or of several coupled weights.

Used for channel importance: a channel group that spans several layers (a residual stream,
the producers of a concatenation) is scored over every weight that writes it.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops import _extension  # noqa: F401  (defines torch.ops.lwdvc.*)
from lwdvc_kernels.ops.reference.channel_norm import channel_norm_reference
from lwdvc_kernels.ops.validation import check_channel_norm_args


@torch.library.register_fake("lwdvc::channel_norm")
def _channel_norm_fake(weights, dims):
    wrapped = check_channel_norm_args(weights, dims)
    return weights[0].new_empty((weights[0].size(wrapped[0]),), dtype=torch.float32)


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
    if isinstance(weights, torch.Tensor):
        weights = [weights]
    weights = [w.detach() if isinstance(w, torch.Tensor) else w for w in weights]
    dims = [dims] * len(weights) if isinstance(dims, int) else list(dims)
    wrapped = check_channel_norm_args(weights, dims)  # also catches an empty list before dispatch
    if backend == "auto":
        return torch.ops.lwdvc.channel_norm(weights, dims)
    if backend == "reference":
        return channel_norm_reference(weights, wrapped)
    if backend == "triton":
        from lwdvc_kernels.ops.triton.channel_norm import channel_norm_triton

        return channel_norm_triton(weights, wrapped)
    raise ValueError(f"channel_norm: unknown backend {backend!r}; expected auto, reference or triton")
