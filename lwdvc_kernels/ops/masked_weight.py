"""``masked_weight``: the fused mask-apply with the gradient-decay backward.

Forward ``weight * mask`` with the 1-D mask broadcast along ``dim``; backward
``grad * (mask + beta * (1 - mask))``; no gradient for the mask. ``beta = 1`` is the
straight-through estimator, ``beta = 0`` plain masking, values in between decay the gradient of
pruned weights.

Backends: ``"auto"`` (the dispatcher: C++ CPU / CUDA kernels with C++ autograd),
``"reference"`` (plain PyTorch with a Python autograd Function: the oracle and the eager
baseline) and ``"triton"`` (CUDA devices, or CPU under ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import torch

from lwdvc_kernels.ops import _extension  # noqa: F401  (defines torch.ops.lwdvc.*)
from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward, masked_weight_forward
from lwdvc_kernels.ops.validation import check_masked_weight_args

BACKENDS = ("auto", "reference", "triton")


@torch.library.register_fake("lwdvc::masked_weight")
def _masked_weight_fake(weight, mask, beta, dim):
    check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
    return torch.empty_like(weight)


@torch.library.register_fake("lwdvc::masked_weight_backward")
def _masked_weight_backward_fake(grad, mask, beta, dim):
    check_masked_weight_args("masked_weight_backward", "grad", grad, mask, beta, dim)
    return torch.empty_like(grad)


class ReferenceMaskedWeight(torch.autograd.Function):
    """Eager PyTorch: ``w * m.view(...)`` forward, gradient-decay backward."""

    @staticmethod
    def forward(ctx, weight, mask, beta, dim):
        d = check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
        ctx.save_for_backward(mask)
        ctx.beta, ctx.dim = beta, d
        return masked_weight_forward(weight, mask, d)

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return masked_weight_backward(grad, mask, ctx.beta, ctx.dim), None, None, None


def masked_weight(
    weight: torch.Tensor,
    mask: torch.Tensor,
    beta: float = 0.0,
    dim: int = 0,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Applies a channel mask to a weight, with the gradient-decay backward.

    Args:
        weight: floating tensor of any shape, e.g. conv [Cout, Cin, kh, kw] or transposed conv
            [Cin, Cout, kh, kw]; any strides.
        mask: [weight.size(dim)] float or bool, on the weight's device (1 keeps, 0 prunes).
        beta: gradient-decay factor in [0, 1] for the pruned entries' gradient.
        dim: the channel dim of ``weight`` that ``mask`` indexes (negative dims allowed).
        backend: ``"auto"``, ``"reference"`` or ``"triton"``.

    Returns:
        Tensor shaped like ``weight``: ``weight * mask`` broadcast along ``dim``.
    """
    beta = float(beta)
    if backend == "auto":
        return torch.ops.lwdvc.masked_weight(weight, mask, beta, dim)
    return python_backend("masked_weight", backend).apply(weight, mask, beta, dim)


def python_backend(op: str, backend: str) -> type[torch.autograd.Function]:
    """The autograd Function of a Python backend (``"reference"`` or ``"triton"``) of masked_weight.

    Raises:
        ValueError: for any other backend name, naming ``op``.
    """
    if backend == "reference":
        return ReferenceMaskedWeight
    if backend == "triton":
        from lwdvc_kernels.ops.triton.masked_weight import TritonMaskedWeight

        return TritonMaskedWeight
    raise ValueError(f"{op}: unknown backend {backend!r}; expected one of {BACKENDS}")
