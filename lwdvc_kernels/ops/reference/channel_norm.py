"""Plain PyTorch reference of ``channel_norm``: the test oracle and last-resort fallback."""
from __future__ import annotations

from collections.abc import Sequence

import torch


def channel_norm_reference(weights: Sequence[torch.Tensor], dims: Sequence[int]) -> torch.Tensor:
    """Per-channel L2 norm over coupled weights.

    Args:
        weights: tensors that share a channel axis of length C along ``dims[k]``.
        dims: the channel dim of each weight (already validated and wrapped).

    Returns:
        float32 [C]: ``sqrt(sum_k sum_{other dims} weights[k] ** 2)``.
    """
    total = None
    for w, dim in zip(weights, dims):
        moved = w.detach().to(torch.float64).movedim(dim, 0).reshape(w.size(dim), -1)
        sumsq = (moved * moved).sum(dim=1)
        total = sumsq if total is None else total + sumsq
    return total.sqrt().to(torch.float32)
