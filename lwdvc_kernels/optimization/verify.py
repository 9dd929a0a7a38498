"""Check an optimised module against the original on the same inputs."""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels.compaction.trace import iter_tensors
from lwdvc_kernels.compaction.verify import cloned, output_errors

__all__ = ["OptimizationMismatch", "relative_error"]


class OptimizationMismatch(AssertionError):
    """The optimised module's outputs differ from the original's beyond the dtype tolerance."""


@torch.no_grad()
def relative_error(reference: nn.Module, candidate: nn.Module, inputs: tuple) -> float:
    """Worst ``||a - b|| / ||a||`` over the floating outputs (computed in float64).

    Unlike :func:`lwdvc_kernels.compaction.verify.compare_outputs` this runs the given inputs and
    returns the error (the tolerance depends on the optimised dtype, see ``optimize``). Each
    module runs on its own copy of ``inputs``, so a forward that changes its inputs in place
    neither leaves them changed nor feeds the candidate changed values.

    Raises:
        OptimizationMismatch: when the two modules return different numbers or shapes of tensors,
            or integer outputs that differ.
    """
    was_training = reference.training
    reference.eval()
    try:
        want = list(iter_tensors(reference(*cloned(inputs))))
    finally:
        reference.train(was_training)
    got = list(iter_tensors(candidate(*cloned(inputs))))
    errors = output_errors(want, got, OptimizationMismatch, ("the original", "optimized module"))
    worst = max((err / max(norm, 1e-30) for _, _, err, norm in errors), default=0.0)
    return worst
