"""Check an optimised module against the original on the same inputs."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels.compact.trace import iter_tensors

__all__ = ["OptimizationMismatch", "relative_error"]


class OptimizationMismatch(AssertionError):
    """The optimised module's outputs differ from the original's beyond the dtype tolerance."""


@torch.no_grad()
def relative_error(reference: nn.Module, candidate: nn.Module, inputs: tuple) -> float:
    """Worst ``||a - b|| / ||a||`` over the floating outputs (computed in float64).

    Unlike :func:`lwdvc_kernels.compact.verify.compare_outputs` this runs the given inputs and
    returns the error (the tolerance depends on the optimised dtype, see ``optimize``).

    Raises:
        OptimizationMismatch: when the two modules return different numbers or shapes of tensors.
    """
    was_training = reference.training
    reference.eval()
    try:
        want = list(iter_tensors(reference(*inputs)))
    finally:
        reference.train(was_training)
    got = list(iter_tensors(candidate(*inputs)))
    if len(want) != len(got):
        raise OptimizationMismatch(f"optimized module returns {len(got)} tensors, the original {len(want)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(want, got)):
        if a.shape != b.shape:
            raise OptimizationMismatch(f"output {i}: shape {tuple(b.shape)} differs from {tuple(a.shape)}")
        if a.is_floating_point():
            a64, b64 = a.double(), b.double()
            worst = max(worst, float((a64 - b64).norm() / a64.norm().clamp_min(1e-30)))
    return worst
