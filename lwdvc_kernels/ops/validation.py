"""Argument checks of the lwdvc ops (shared helpers, masked_weight(s), channel_norm).

The one place these ops' arguments are checked: the functional API runs them before dispatch,
the fake kernels and the Python kernels too, so every backend rejects bad input alike with a
TypeError / ValueError / IndexError naming the tensor, shape, dtype or device (the C++ kernels
keep only the preconditions of csrc/ops/common/preconditions.h).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def check_floating(op: str, name: str, t: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(
            f"{op}: {name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got {t.dtype}"
        )
    if t.numel() == 0:
        raise ValueError(f"{op}: {name} is empty (shape {list(t.shape)})")


def check_dim(op: str, name: str, t: torch.Tensor, dim: int) -> int:
    """Returns ``dim`` wrapped into [0, t.dim())."""
    ndim = t.dim()
    if ndim == 0:
        raise IndexError(f"{op}: {name} must have at least one dimension")
    if not -ndim <= dim < ndim:
        raise IndexError(
            f"{op}: dim {dim} is out of range for {name} of shape {list(t.shape)} "
            f"(expected -{ndim} <= dim < {ndim})"
        )
    return dim % ndim


def check_masked_weight_args(
    op: str, name: str, weight: torch.Tensor, mask: torch.Tensor, beta: float, dim: int
) -> int:
    """Validates masked_weight / masked_weight_backward arguments; returns the wrapped dim."""
    check_floating(op, name, weight)
    d = check_dim(op, name, weight, dim)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{op}: mask must be a tensor, got {type(mask).__name__}")
    if not (mask.is_floating_point() or mask.dtype == torch.bool):
        raise TypeError(f"{op}: mask must be a floating-point or bool tensor, got {mask.dtype}")
    if mask.dim() != 1:
        raise ValueError(f"{op}: mask must be 1-D, got shape {list(mask.shape)}")
    if mask.size(0) != weight.size(d):
        raise ValueError(
            f"{op}: mask has length {mask.size(0)} but the tensor has size {weight.size(d)} "
            f"along dim {d} (shape {list(weight.shape)})"
        )
    if mask.device != weight.device:
        raise ValueError(f"{op}: mask is on {mask.device} but the tensor is on {weight.device}")
    check_beta(op, beta)
    return d


def check_beta(op: str, beta: float) -> None:
    if not (math.isfinite(beta) and 0.0 <= beta <= 1.0):
        raise ValueError(f"{op}: beta must lie in [0, 1], got {beta}")


def check_masked_weights_args(
    op: str,
    name: str,
    weights: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    beta: float,
    dims: Sequence[int],
) -> list[int]:
    """Validates masked_weights / masked_weights_backward arguments; returns the wrapped dims.

    Errors about one tensor name its index (``"<op>: tensor 3: mask has length ..."``). All
    tensors must share one device; their dtypes may differ.
    """
    if len(weights) == 0:
        raise ValueError(f"{op}: needs at least one {name}")
    if not len(weights) == len(masks) == len(dims):
        raise ValueError(f"{op}: got {len(weights)} {name}s, {len(masks)} masks and {len(dims)} dims")
    check_beta(op, beta)
    wrapped = []
    for k, (weight, mask, dim) in enumerate(zip(weights, masks, dims)):
        wrapped.append(check_masked_weight_args(f"{op}: tensor {k}", name, weight, mask, beta, dim))
        if weight.device != weights[0].device:
            raise ValueError(f"{op}: tensor {k} is on {weight.device} but tensor 0 is on {weights[0].device}")
    return wrapped


def check_channel_norm_args(weights: Sequence[torch.Tensor], dims: Sequence[int]) -> list[int]:
    """Validates channel_norm arguments; returns the wrapped dims."""
    op = "channel_norm"
    if len(weights) == 0:
        raise ValueError(f"{op}: needs at least one weight")
    if len(weights) != len(dims):
        raise ValueError(f"{op}: got {len(weights)} weights but {len(dims)} dims")
    wrapped = []
    for k, (w, dim) in enumerate(zip(weights, dims)):
        check_floating(op, "weight", w)
        wrapped.append(check_dim(op, "weight", w, dim))
        if w.device != weights[0].device:
            raise ValueError(f"{op}: weight {k} is on {w.device} but weight 0 is on {weights[0].device}")
        if w.size(wrapped[k]) != weights[0].size(wrapped[0]):
            raise ValueError(
                f"{op}: weight {k} has {w.size(wrapped[k])} channels along dim {wrapped[k]} "
                f"but weight 0 has {weights[0].size(wrapped[0])}"
            )
    return wrapped
