"""Check that a compacted model computes what the masked model computes."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lwdvc_kernels.compaction.trace import iter_tensors, normalize_inputs, preserved_state

__all__ = ["random_like_inputs", "cloned", "compare_outputs", "output_errors", "CompactionMismatch"]


class CompactionMismatch(AssertionError):
    """The compacted model's outputs differ from the masked model's."""


def random_like_inputs(example_inputs: Any, seed: int = 0) -> tuple[tuple, dict]:
    """Inputs shaped like ``example_inputs`` with random, never all-zero values.

    Floating tensors get N(0, 1) values scaled to the example's magnitude (at least 1);
    integer/bool tensors and non-tensors are kept as they are.
    """
    gen = torch.Generator().manual_seed(seed)

    def convert(obj):
        if isinstance(obj, torch.Tensor):
            if not obj.is_floating_point():
                return obj
            scale = max(1.0, float(obj.detach().abs().amax())) if obj.numel() else 1.0
            values = torch.randn(obj.shape, generator=gen, dtype=torch.float32) * scale
            return values.to(device=obj.device, dtype=obj.dtype)
        if isinstance(obj, (list, tuple)):
            return type(obj)(convert(o) for o in obj)
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        return obj

    args, kwargs = normalize_inputs(example_inputs)
    return convert(args), convert(kwargs)


def cloned(obj: Any) -> Any:
    """``obj`` with every tensor inside nested tuples/lists/dicts cloned, so that a forward pass
    that changes its inputs in place leaves the originals for the next run."""
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, (list, tuple)):
        return type(obj)(cloned(o) for o in obj)
    if isinstance(obj, dict):
        return {k: cloned(v) for k, v in obj.items()}
    return obj


def output_errors(
    expected: list[torch.Tensor], got: list[torch.Tensor], error: type[Exception], names: tuple[str, str]
) -> list[tuple[int, torch.Tensor, float, float]]:
    """Per-output error norms ``||a - b||`` and reference norms ``||a||`` (float64).

    Args:
        expected, got: flattened outputs of the reference and the candidate.
        error: exception raised when the outputs cannot be compared.
        names: how messages call the reference and the candidate.

    Returns:
        ``(index, b, ||a - b||, ||a||)`` for every floating output.

    Raises:
        error: different numbers of outputs, different shapes, or integer outputs that differ.
    """
    ref_name, cand_name = names
    if len(expected) != len(got):
        raise error(f"{ref_name} returns {len(expected)} tensors, {cand_name} {len(got)}")
    errors = []
    for i, (a, b) in enumerate(zip(expected, got)):
        if a.shape != b.shape:
            raise error(f"output {i}: {ref_name} shape {tuple(a.shape)} != {cand_name} {tuple(b.shape)}")
        if not a.is_floating_point():
            if not torch.equal(a, b):
                raise error(f"output {i}: integer outputs differ")
            continue
        a64, b64 = a.double(), b.double()
        errors.append((i, b, float((a64 - b64).norm()), float(a64.norm())))
    return errors


@torch.no_grad()
def compare_outputs(
    reference: nn.Module, candidate: nn.Module, example_inputs: Any, rtol: float = 1e-5, seed: int = 0
) -> float:
    """Run both models on the same random inputs (each on its own copy); raise if any output differs.

    Tolerance: ``||a - b|| <= rtol * ||a||`` per output tensor (plus a tiny absolute floor).
    Both run in eval mode; their train/eval flags and buffers are restored afterwards.

    Returns:
        The worst relative error seen.

    Raises:
        CompactionMismatch: naming the output index, shapes and error.
    """
    args, kwargs = random_like_inputs(example_inputs, seed)
    with preserved_state(reference, candidate):
        expected = list(iter_tensors(reference(*cloned(args), **cloned(kwargs))))
        got = list(iter_tensors(candidate(*cloned(args), **cloned(kwargs))))
    worst = 0.0
    for i, b, err, norm in output_errors(expected, got, CompactionMismatch, ("masked model", "compacted")):
        rel = err / max(norm, 1e-30)
        worst = max(worst, rel)
        if not err <= rtol * norm + 1e-12 or not torch.isfinite(b).all():
            raise CompactionMismatch(
                f"output {i} {tuple(b.shape)}: compacted differs from masked model, "
                f"relative error {rel:.3e} > {rtol:.1e}"
            )
    return worst
