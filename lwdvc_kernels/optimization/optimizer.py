"""``optimize``: turn a (compacted) decoder module into a fused, layout-tuned one."""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from lwdvc_kernels.optimization.cpu import BoundaryCast, to_cpu_layout
from lwdvc_kernels.optimization.patterns import FusionReport, fuse_module
from lwdvc_kernels.optimization.verify import OptimizationMismatch, relative_error

__all__ = ["optimize", "DTYPE_TOLERANCE"]

# Relative error (||a - b|| / ||a|| per output) allowed against the unoptimised float32 module.
DTYPE_TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 5e-2, torch.float16: 1e-2}


def _inputs_tuple(example_inputs: Any) -> tuple:
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    raise TypeError(f"optimize: example_inputs must be a tensor or a tuple of positional inputs, "
                    f"got {type(example_inputs).__name__}")


def optimize(
    model: nn.Module,
    example_inputs: Any,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    channels_last: bool | None = None,
    backend: str = "auto",
    verify: bool = True,
    return_report: bool = False,
) -> nn.Module | tuple[nn.Module, FusionReport]:
    """Return an inference-only copy of ``model`` whose layers run through fused ops.

    Conv chains (conv + bias + ReLU/LeakyReLU + PixelShuffle + residual add) become one
    ``ops.conv2d_epilogue`` call, GDN/IGDN one ``ops.gdn`` call; everything else stays plain
    PyTorch. On CPU the module also runs in channels_last (and in ``dtype``, e.g. bfloat16),
    converting at its boundary so that callers see the dtype and layout they passed in.

    Args:
        model: any module (typically a compacted decoder module); not modified.
        example_inputs: one tensor or a tuple of positional inputs (any small spatial size that
            the module accepts); used for tracing shapes and for the verification.
        device: ``"cpu"`` or a CUDA device; the copy is moved there.
        dtype: compute dtype (None keeps float32; ``torch.bfloat16`` uses AVX512-BF16 on this CPU).
        channels_last: default True on CPU, False on CUDA.
        backend: ops backend of the fused layers (``"auto"``, ``"reference"``, ``"triton"``).
        verify: run both modules on ``example_inputs`` and raise :class:`OptimizationMismatch`
            when an output's relative error exceeds ``DTYPE_TOLERANCE[dtype]``.
        return_report: also return the :class:`FusionReport` (what was fused, what was not).

    Returns:
        The optimised module (eval mode, no gradients), and the report when asked.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"optimize expects an nn.Module, got {type(model).__name__}")
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"optimize: unsupported device {device} (cpu or cuda)")
    if dtype is not None and dtype not in DTYPE_TOLERANCE:
        raise ValueError(f"optimize: dtype must be one of {list(DTYPE_TOLERANCE)}, got {dtype}")
    inputs = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in _inputs_tuple(example_inputs))
    work = copy.deepcopy(model).to(device).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    fused, report = fuse_module(work, inputs, backend)
    if channels_last is None:
        channels_last = device.type == "cpu"
    fused = to_cpu_layout(fused, dtype, channels_last)
    wrapped: nn.Module = fused
    if dtype not in (None, torch.float32) or channels_last:
        wrapped = BoundaryCast(fused, dtype, channels_last)
    wrapped.eval()
    if verify:
        reference = model.to(device) if next(model.parameters(), torch.empty(0)).device == device else \
            copy.deepcopy(model).to(device)
        error = relative_error(reference, wrapped, inputs)
        tolerance = DTYPE_TOLERANCE[dtype or torch.float32]
        if error > tolerance:
            raise OptimizationMismatch(f"optimized module differs from the original: relative error {error:.3g} "
                                       f"> {tolerance:g} ({dtype or torch.float32}); fused: {report.fused}")
    return (wrapped, report) if return_report else wrapped
