"""``gdn``: fused GDN / IGDN (the 1x1 conv over x^2, sqrt and the multiply in one pass).

Takes the *effective* parameters (after the lower bounds and the reparameterisation, see
:class:`lwdvc_kernels.nn.GDN`): ``norm = beta + gamma @ x^2`` per pixel, then
``x / sqrt(norm)`` (GDN) or ``x * sqrt(norm)`` (IGDN). Inference only (no autograd). Backends:
``"auto"`` (C++ CPU / CUDA kernels), ``"reference"`` (eager PyTorch, the oracle) and
``"triton"`` (CUDA devices, or CPU under ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import torch
from torch._prims_common import suggest_memory_format

from lwdvc_kernels.ops.fused_validation import check_gdn_args
from lwdvc_kernels.ops.reference.gdn import gdn_reference
from lwdvc_kernels.ops.registry import AUTO, REFERENCE, check_backend


def gdn_fake(input, beta, gamma, inverse):
    check_gdn_args(input, beta, gamma)
    return torch.empty_like(input, memory_format=suggest_memory_format(input))


def gdn_kernel(input, beta, gamma, inverse):
    check_gdn_args(input, beta, gamma)
    return gdn_reference(input, beta, gamma, inverse)


def gdn(input: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor, inverse: bool = False, *,
        backend: str = "auto") -> torch.Tensor:
    """Fused GDN (``inverse=False``) or IGDN (``inverse=True``).

    Args:
        input: [N, C, H, W], NCHW or channels_last.
        beta: effective beta [C] (positive), input dtype and device.
        gamma: effective gamma [C, C] (non-negative), input dtype and device.
        inverse: multiply by the norm (IGDN) instead of dividing (GDN).
        backend: ``"auto"``, ``"reference"`` or ``"triton"``.

    Returns:
        [N, C, H, W] in the input's memory format.
    """
    check_backend("gdn", backend)
    check_gdn_args(input, beta, gamma)
    if backend == AUTO:
        return torch.ops.lwdvc.gdn(input, beta, gamma, bool(inverse))
    if backend == REFERENCE:
        return gdn_reference(input, beta, gamma, bool(inverse))
    from lwdvc_kernels.ops.triton.gdn import gdn_triton

    return gdn_triton(input, beta, gamma, bool(inverse))
