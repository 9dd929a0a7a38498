"""Multiply-accumulate counting that includes the sampling ops common counters miss.

``count_macs`` runs the module once under :class:`torch.utils.flop_counter.FlopCounterMode`
(convolutions, transposed convolutions counted over their input positions, linear layers and
matrix products) and adds formulas for two ops that mode does not know:

* ``grid_sample`` (``aten.grid_sampler_2d``/``3d``): bilinear 4 MACs per output element
  (``N * C * H_out * W_out * 4``), trilinear 8, bicubic 16, nearest 0.
* deformable convolution (``torchvision::deform_conv2d`` and ``lwdvc::deform_conv2d``): the GEMM
  ``N * C_out * C_in / groups * kh * kw * H_out * W_out`` plus bilinear sampling
  ``N * C_in * kh * kw * H_out * W_out * 4``.

Bias additions, activations and other elementwise ops are not counted. The count works on the
meta device, so large models can be measured without allocating activations.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_macs", "count_macs_of_call", "grid_sample_macs", "deform_conv2d_macs"]

# MACs per output element of grid_sample, keyed by its interpolation_mode argument
# (0 bilinear, 1 nearest, 2 bicubic).
_GRID_SAMPLE_MACS_PER_OUTPUT = {0: 4, 1: 0, 2: 16}


def grid_sample_macs(input_shape: Sequence[int], out_shape: Sequence[int], mode: int) -> int:
    """MACs of ``grid_sample``: taps per output element times the output size.

    Args:
        input_shape: [N, C, H_in, W_in] (or 5-D for volumetric sampling).
        out_shape: [N, C, H_out, W_out] (or 5-D).
        mode: ``interpolation_mode`` integer (0 bilinear/trilinear, 1 nearest, 2 bicubic).
    """
    taps = _GRID_SAMPLE_MACS_PER_OUTPUT.get(int(mode), 4)
    if len(out_shape) == 5 and int(mode) == 0:
        taps = 8
    numel = 1
    for size in out_shape:
        numel *= int(size)
    return numel * taps


def deform_conv2d_macs(
    input_shape: Sequence[int], weight_shape: Sequence[int], out_shape: Sequence[int]
) -> int:
    """MACs of a deformable convolution: GEMM plus bilinear sampling of every tap.

    Args:
        input_shape: [N, C_in, H, W].
        weight_shape: [C_out, C_in / groups, kh, kw].
        out_shape: [N, C_out, H_out, W_out].
    """
    n, c_in = int(input_shape[0]), int(input_shape[1])
    c_out, c_in_per_group, kh, kw = (int(s) for s in weight_shape)
    positions = n * int(out_shape[2]) * int(out_shape[3])
    gemm = c_out * c_in_per_group * kh * kw * positions
    sampling = c_in * kh * kw * positions * 4
    return gemm + sampling


def _grid_sampler_flops(input_shape, grid_shape, mode, *args, out_shape=None, **kwargs) -> int:
    return 2 * grid_sample_macs(input_shape, out_shape, mode)


def _deform_conv2d_flops(input_shape, weight_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * deform_conv2d_macs(input_shape, weight_shape, out_shape)


def _custom_mapping() -> dict[Any, Any]:
    from lwdvc_kernels import ops  # noqa: F401  (defines torch.ops.lwdvc.*)

    mapping: dict[Any, Any] = {
        torch.ops.aten.grid_sampler_2d: _grid_sampler_flops,
        torch.ops.aten.grid_sampler_3d: _grid_sampler_flops,
        torch.ops.lwdvc.deform_conv2d: _deform_conv2d_flops,  # (input, weight, ...) as torchvision's
    }
    try:
        import torchvision  # noqa: F401  (registers torch.ops.torchvision)

        mapping[torch.ops.torchvision.deform_conv2d] = _deform_conv2d_flops
    except (ImportError, AttributeError, RuntimeError):
        pass
    return mapping


def _strip_root(name: str) -> str:
    """``'Root.a.b'`` (FlopCounterMode's naming) -> ``'a.b'``; the root itself -> ``''``."""
    _, _, rest = name.partition(".")
    return rest


def count_macs(
    module: nn.Module, *inputs: Any, by_module: bool = False, **kwargs: Any
) -> int | dict[str, int]:
    """Count the multiply-accumulates of one forward call ``module(*inputs, **kwargs)``.

    Args:
        module: any module; may live on the meta device (then pass meta inputs).
        *inputs: positional inputs of the forward call.
        by_module: if True return ``{qualified submodule name: MACs}`` with every submodule
            that ran at least one counted op (``''`` is the whole module) instead of the total.
        **kwargs: keyword inputs of the forward call.

    Returns:
        Total MACs (int), or the per-submodule totals when ``by_module`` is True.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"count_macs expects an nn.Module, got {type(module).__name__}")
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    with torch.no_grad(), parametrize.cached():
        for owner in module.modules():  # parametrized weights computed (and cached) outside the
            for name in getattr(owner, "parametrizations", {}):  # counter: its module tracker
                getattr(owner, name)  # cannot follow parametrization calls
        with counter:
            module(*inputs, **kwargs)
    if not by_module:
        return counter.get_total_flops() // 2
    totals: dict[str, int] = {}
    for name, per_op in counter.get_flop_counts().items():
        if name == "Global":
            continue
        totals[_strip_root(name)] = sum(per_op.values()) // 2
    totals[""] = counter.get_total_flops() // 2
    return totals


def count_macs_of_call(func: Any, args: tuple, kwargs: dict) -> int:
    """MACs of one function call ``func(*args, **kwargs)`` (same rules as :func:`count_macs`)."""
    counter = FlopCounterMode(display=False, custom_mapping=_custom_mapping())
    with torch.no_grad(), counter:
        func(*args, **kwargs)
    return counter.get_total_flops() // 2
