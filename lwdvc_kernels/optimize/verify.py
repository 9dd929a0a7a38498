"""Check an optimised module against the original on the same inputs."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["OptimizationMismatch", "relative_error", "flat_outputs"]


class OptimizationMismatch(AssertionError):
    """The optimised module's outputs differ from the original's beyond the dtype tolerance."""


def flat_outputs(out) -> list[torch.Tensor]:
    """Every tensor in a (nested) output, in order."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat_outputs(o)]
    if isinstance(out, dict):
        return [t for v in out.values() for t in flat_outputs(v)]
    return []


@torch.no_grad()
def relative_error(reference: nn.Module, candidate: nn.Module, inputs: tuple) -> float:
    """Worst ``||a - b|| / ||a||`` over the floating outputs (computed in float64).

    Raises:
        OptimizationMismatch: when the two modules return different numbers or shapes of tensors.
    """
    was_training = reference.training
    reference.eval()
    want = flat_outputs(reference(*inputs))
    reference.train(was_training)
    got = flat_outputs(candidate(*inputs))
    if len(want) != len(got):
        raise OptimizationMismatch(f"optimized module returns {len(got)} tensors, the original {len(want)}")
    worst = 0.0
    for i, (a, b) in enumerate(zip(want, got)):
        if a.shape != b.shape:
            raise OptimizationMismatch(f"output {i}: shape {tuple(b.shape)} differs from {tuple(a.shape)}")
        if not a.is_floating_point():
            continue
        a64, b64 = a.double(), b.double()
        worst = max(worst, float((a64 - b64).norm() / a64.norm().clamp_min(1e-30)))
    return worst
