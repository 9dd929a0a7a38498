"""``masked_weights``: ``masked_weight`` over a list of tensors in one call.

Same math per tensor as :func:`lwdvc_kernels.ops.masked_weight` (forward ``weight * mask``
broadcast along that tensor's dim, gradient-decay backward, no gradient for the masks), one
``beta`` for the whole list. Through the dispatcher (``backend="auto"``) the whole list costs one
op call, one C++ autograd node and, on CPU, one parallel region with outputs allocated up front:
the per-weight overhead of a model with many masked weights goes away. The CUDA kernel launches
the single-tensor kernel once per tensor; ``"reference"`` and ``"triton"`` loop over the
single-tensor backends.

Tensors of one list must share a device; their dtypes and shapes may differ.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops.masked_weight import python_function
from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward, masked_weight_forward
from lwdvc_kernels.ops.registry import AUTO, check_backend
from lwdvc_kernels.ops.validation import check_masked_weights_args


def masked_weights_fake(weights, masks, beta, dims):
    check_masked_weights_args("masked_weights", "weight", weights, masks, beta, dims)
    return [torch.empty_like(w) for w in weights]


def masked_weights_backward_fake(grads, masks, beta, dims):
    check_masked_weights_args("masked_weights_backward", "grad", grads, masks, beta, dims)
    return [torch.empty_like(g) for g in grads]


def masked_weights_kernel(weights, masks, beta, dims):
    wrapped = check_masked_weights_args("masked_weights", "weight", weights, masks, beta, dims)
    return [masked_weight_forward(w, m, d) for w, m, d in zip(weights, masks, wrapped)]


def masked_weights_backward_kernel(grads, masks, beta, dims):
    wrapped = check_masked_weights_args("masked_weights_backward", "grad", grads, masks, beta, dims)
    return [masked_weight_backward(g, m, beta, d) for g, m, d in zip(grads, masks, wrapped)]


def masked_weights_setup_context(ctx, inputs, output) -> None:
    _, masks, beta, dims = inputs
    ctx.save_for_backward(*masks)
    ctx.beta, ctx.dims = beta, list(dims)
    ctx.set_materialize_grads(False)


def masked_weights_gradient(ctx, grads):
    """One gradient per weight through one masked_weights_backward call; outputs unused in the
    loss (grad None) are skipped."""
    masks = ctx.saved_tensors
    live = [k for k, grad in enumerate(grads) if grad is not None]
    result = [None] * len(grads)
    if live:
        scaled = torch.ops.lwdvc.masked_weights_backward(
            [grads[k] for k in live], [masks[k] for k in live], ctx.beta, [ctx.dims[k] for k in live])
        for k, grad in zip(live, scaled):
            result[k] = grad
    return result, [None] * len(masks), None, None


masked_weights_backward_setup_context = masked_weights_setup_context
masked_weights_backward_gradient = masked_weights_gradient


def masked_weights(
    weights: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    beta: float = 0.0,
    dims: int | Sequence[int] = 0,
    *,
    backend: str = "auto",
) -> list[torch.Tensor]:
    """Applies a channel mask to each of several weights, with the gradient-decay backward.

    Args:
        weights: N >= 1 floating tensors on one device, any shapes, strides and (floating) dtypes.
        masks: N 1-D float or bool tensors, ``masks[k]`` of length ``weights[k].size(dims[k])``,
            on the weights' device (1 keeps, 0 prunes).
        beta: gradient-decay factor in [0, 1] for the pruned entries' gradient, shared by all.
        dims: the channel dim of each weight (one int applies to all; negative dims allowed).
        backend: ``"auto"``, ``"reference"`` or ``"triton"``.

    Returns:
        N tensors, ``out[k]`` shaped like ``weights[k]``: ``weights[k] * masks[k]`` broadcast
        along ``dims[k]``.

    Raises:
        ValueError / TypeError / IndexError: as :func:`masked_weight`, naming the index of the
            offending tensor; ValueError for an empty list or lists of different lengths.
    """
    check_backend("masked_weights", backend)
    weights, masks = list(weights), list(masks)
    dims = [dims] * len(weights) if isinstance(dims, int) else list(dims)
    beta = float(beta)
    wrapped = check_masked_weights_args("masked_weights", "weight", weights, masks, beta, dims)
    if backend == AUTO:
        return torch.ops.lwdvc.masked_weights(weights, masks, beta, wrapped)
    function = python_function(backend)
    return [function.apply(w, m, beta, d) for w, m, d in zip(weights, masks, wrapped)]
