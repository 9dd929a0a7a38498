"""``masked_weight``: the fused mask-apply with the gradient-decay backward.

Forward ``weight * mask`` with the 1-D mask broadcast along ``dim``; backward
``grad * (mask + beta * (1 - mask))`` (``masked_weight_backward``, itself an op); no gradient
for the mask. ``beta = 1`` is the straight-through estimator, ``beta = 0`` plain masking, values
in between decay the gradient of pruned weights.

Backends: ``"auto"`` (the dispatcher: C++ CPU / CUDA kernels with C++ autograd),
``"reference"`` (plain PyTorch: the oracle and the eager baseline) and ``"triton"`` (CUDA
devices, or CPU under ``TRITON_INTERPRET=1``). The Python autograd formula is written once
(:func:`masked_weight_gradient`): the fallback registration without the extension and the
``"reference"`` / ``"triton"`` Functions all use it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward, masked_weight_forward
from lwdvc_kernels.ops.registry import AUTO, check_backend
from lwdvc_kernels.ops.validation import check_masked_weight_args


def masked_weight_fake(weight, mask, beta, dim):
    check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
    return torch.empty_like(weight)


def masked_weight_backward_fake(grad, mask, beta, dim):
    check_masked_weight_args("masked_weight_backward", "grad", grad, mask, beta, dim)
    return torch.empty_like(grad)


def masked_weight_kernel(weight, mask, beta, dim):
    d = check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
    return masked_weight_forward(weight, mask, d)


def masked_weight_backward_kernel(grad, mask, beta, dim):
    d = check_masked_weight_args("masked_weight_backward", "grad", grad, mask, beta, dim)
    return masked_weight_backward(grad, mask, beta, d)


def masked_weight_setup_context(ctx, inputs, output) -> None:
    """Saves what the backward needs: the mask [C], beta and dim."""
    _, mask, beta, dim = inputs
    ctx.save_for_backward(mask)
    ctx.beta, ctx.dim = beta, dim


def scaled_gradient(backward: Callable, ctx, grad: torch.Tensor) -> tuple:
    """Gradients of (weight, mask, beta, dim): ``backward(grad, mask, beta, dim)`` for the weight
    (the gradient-decay backward of a backend), nothing for the rest."""
    (mask,) = ctx.saved_tensors
    return backward(grad, mask, ctx.beta, ctx.dim), None, None, None


def masked_weight_gradient(ctx, grad):
    """Autograd of masked_weight and of masked_weight_backward (both scale channels, so both have
    the gradient-decay backward), through the op so that it is differentiable again."""
    return scaled_gradient(torch.ops.lwdvc.masked_weight_backward, ctx, grad)


masked_weight_backward_setup_context = masked_weight_setup_context
masked_weight_backward_gradient = masked_weight_gradient


def scale_function(forward: Callable, backward: Callable) -> type[torch.autograd.Function]:
    """The autograd Function of a Python backend: ``forward(weight, mask, dim)`` and the
    gradient-decay ``backward(grad, mask, beta, dim)``, for validated arguments and wrapped dims."""

    class MaskedWeightFunction(torch.autograd.Function):
        @staticmethod
        def forward(ctx, weight, mask, beta, dim):
            masked_weight_setup_context(ctx, (weight, mask, beta, dim), None)
            return forward(weight, mask, dim)

        @staticmethod
        def backward(ctx, grad):
            return scaled_gradient(backward, ctx, grad)

    return MaskedWeightFunction


@functools.cache
def python_function(backend: str) -> type[torch.autograd.Function]:
    """The autograd Function of the ``"reference"`` or ``"triton"`` backend."""
    if backend == "triton":
        from lwdvc_kernels.ops.triton.masked_weight import masked_weight_backward_triton, masked_weight_triton

        return scale_function(masked_weight_triton, masked_weight_backward_triton)
    return scale_function(masked_weight_forward, masked_weight_backward)


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

    Raises:
        TypeError / ValueError / IndexError: naming the bad argument, alike on every backend.
    """
    check_backend("masked_weight", backend)
    beta = float(beta)
    d = check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
    if backend == AUTO:
        return torch.ops.lwdvc.masked_weight(weight, mask, beta, d)
    return python_function(backend).apply(weight, mask, beta, d)
