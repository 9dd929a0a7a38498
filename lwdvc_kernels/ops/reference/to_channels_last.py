"""Plain PyTorch reference of ``to_channels_last``."""
from __future__ import annotations

import torch


def to_channels_last_reference(input: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A new tensor: ``input`` [N, C, H, W] in channels_last, cast to ``dtype`` (None keeps the
    dtype)."""
    out = torch.empty(input.shape, dtype=dtype or input.dtype, device=input.device, memory_format=torch.channels_last)
    return out.copy_(input)
