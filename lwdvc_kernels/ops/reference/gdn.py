"""Plain PyTorch reference of the fused ``gdn`` op: the test oracle and last-resort fallback."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format


def gdn_reference(input: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, inverse: bool) -> torch.Tensor:
    """GDN / IGDN with effective parameters, unfused.

    Args:
        input: [N, C, H, W]; beta: effective [C]; gamma: effective [C, C].
        inverse: False divides by the norm (GDN), True multiplies (IGDN).

    Returns:
        [N, C, H, W]: ``input / sqrt(beta + conv1x1(input^2, gamma))`` or ``input * sqrt(...)``.
    """
    norm = torch.sqrt(F.conv2d(input * input, gamma.reshape(*gamma.shape, 1, 1), beta))
    out = input * norm if inverse else input / norm
    return out.contiguous(memory_format=suggest_memory_format(input))
