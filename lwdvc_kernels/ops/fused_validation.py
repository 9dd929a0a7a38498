"""Argument checks of the inference ops (``conv2d_epilogue``, ``conv2d_narrow``, ``gdn``,
``to_channels_last``, and the convolution checks ``deform_conv2d`` shares).

The one place these ops' arguments are checked: the functional API runs them before dispatch,
the fake kernels and the Python kernels too, so every backend raises the same errors (the C++
kernels keep only the preconditions of csrc/ops/common/preconditions.h)."""
from __future__ import annotations

from collections.abc import Sequence

import torch

from lwdvc_kernels.ops.validation import check_floating

ACTIVATIONS = ("none", "relu", "leaky_relu")


def _check_like(op: str, name: str, t: torch.Tensor, input: torch.Tensor) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    if t.dtype != input.dtype:
        raise TypeError(f"{op}: {name} has dtype {t.dtype} but input has {input.dtype}")
    if t.device != input.device:
        raise ValueError(f"{op}: {name} is on {t.device} but input is on {input.device}")


#: Largest value an int64 holds: every size, byte count and index the kernels compute must fit.
INT64_MAX = 2**63 - 1


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one dim (Python ints: never overflows; <= 0 when the
    dilated kernel is larger than the padded input)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _int_pair(op: str, name: str, value: Sequence[int], low: int) -> list[int]:
    """``value`` as two Python ints in [low, INT64_MAX], else a ValueError naming ``name``."""
    try:
        entries = list(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a sequence of two ints, got {value!r}") from None
    if len(entries) != 2:
        raise ValueError(f"{op}: stride, padding and dilation must have two entries each, {name} has {len(entries)}")
    if not all(isinstance(v, (int, torch.SymInt)) and not isinstance(v, bool) for v in entries):
        raise TypeError(f"{op}: {name} must hold ints, got {entries!r}")
    if not all(low <= v <= INT64_MAX for v in entries):
        kind = "positive" if low > 0 else "non-negative"
        raise ValueError(f"{op}: {name} must be {kind} and fit in int64, got {entries}")
    return entries


def _check_extent(op: str, what: str, sizes: Sequence[int], itemsize: int, cause: str) -> None:
    """A buffer of ``sizes`` elements (and its bytes) must be indexable with int64."""
    count = 1
    for size in sizes:
        count *= size
    if count * itemsize > INT64_MAX:
        raise ValueError(f"{op}: {cause} gives {what} of {list(sizes)} ({count} elements), too large to "
                         "index with int64")


def check_conv2d_geometry(
    op: str, input: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], padding: Sequence[int],
    dilation: Sequence[int], groups: int,
) -> tuple[int, int, int, int]:
    """Checks shared by the 2-D convolution ops (floating 4-D input and weight of one dtype and
    device; stride and dilation positive, padding non-negative, all within int64; groups; a
    kernel no larger than the padded input, as :func:`torch.nn.functional.conv2d` requires; a
    padded input, an output and an im2col buffer whose element and byte counts fit in int64),
    all in Python ints before any kernel runs; returns the conv output shape (N, Cout, Ho, Wo)."""
    check_floating(op, "input", input)
    check_floating(op, "weight", weight)
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be 4-D [N, C, H, W], got shape {list(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"{op}: weight must be 4-D [Cout, Cin/groups, kh, kw], got shape {list(weight.shape)}")
    _check_like(op, "weight", weight, input)
    stride = _int_pair(op, "stride", stride, 1)
    padding = _int_pair(op, "padding", padding, 0)
    dilation = _int_pair(op, "dilation", dilation, 1)
    cin, cout = input.size(1), weight.size(0)
    if not isinstance(groups, (int, torch.SymInt)) or isinstance(groups, bool) or not 0 < groups <= INT64_MAX:
        raise ValueError(f"{op}: groups must be a positive int within int64, got {groups!r}")
    if cin % groups or cout % groups:
        raise ValueError(f"{op}: groups {groups} must divide input channels {cin} and output channels {cout}")
    if weight.size(1) * groups != cin:
        raise ValueError(
            f"{op}: weight {list(weight.shape)} with groups {groups} expects {weight.size(1) * groups} input "
            f"channels, input has {cin} (shape {list(input.shape)})"
        )
    itemsize = input.element_size()
    padded = [input.size(2) + 2 * padding[0], input.size(3) + 2 * padding[1]]
    _check_extent(op, "a padded input", [input.size(0), cin, *padded], itemsize, f"padding {padding}")
    kernel = [dilation[0] * (weight.size(2) - 1) + 1, dilation[1] * (weight.size(3) - 1) + 1]
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{op}: the kernel ({kernel[0]} x {kernel[1]} with dilation {dilation}) is larger than the padded "
            f"input ({padded[0]} x {padded[1]}): input {list(input.shape)}, weight {list(weight.shape)}, "
            f"padding {padding}; the input is smaller than the kernel"
        )
    out_h = conv_output_size(input.size(2), weight.size(2), stride[0], padding[0], dilation[0])
    out_w = conv_output_size(input.size(3), weight.size(3), stride[1], padding[1], dilation[1])
    cause = f"stride {stride}, padding {padding}, dilation {dilation}"
    _check_extent(op, "an output", [input.size(0), cout, out_h, out_w], itemsize, cause)
    _check_extent(op, "an im2col buffer", [cin // groups, weight.size(2), weight.size(3), out_h, out_w], itemsize,
                  cause)
    return input.size(0), cout, out_h, out_w


def check_conv2d_bias(op: str, bias: torch.Tensor | None, input: torch.Tensor, out_channels: int) -> None:
    """An optional bias [out_channels] of the input's dtype and device."""
    if bias is not None:
        _check_like(op, "bias", bias, input)
        if bias.dim() != 1 or bias.size(0) != out_channels:
            raise ValueError(f"{op}: bias must have shape [{out_channels}], got {list(bias.shape)}")


def check_conv2d_epilogue_args(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, activation: str,
    upscale: int, *, op: str = "conv2d_epilogue",
) -> tuple[int, int, int, int]:
    """Validates conv2d_epilogue arguments; returns the output shape (N, C, H, W) after the shuffle.
    ``op`` names the op in the messages."""
    batch, cout, out_h, out_w = check_conv2d_geometry(op, input, weight, stride, padding, dilation, groups)
    if activation not in ACTIVATIONS:
        raise ValueError(f"{op}: unknown activation '{activation}' (expected none, relu or leaky_relu)")
    r = upscale
    if r < 1 or cout % (r * r):
        raise ValueError(f"{op}: upscale {r} must be >= 1 and its square must divide the output channels {cout}")
    check_conv2d_bias(op, bias, input, cout)
    shape = (batch, cout // (r * r), out_h * r, out_w * r)
    if residual is not None:
        _check_like(op, "residual", residual, input)
        if tuple(residual.shape) != shape:
            raise ValueError(f"{op}: residual must have the output shape {list(shape)}, got {list(residual.shape)}")
    return shape


NARROW_MAX_OUT_CHANNELS = 8


def check_conv2d_narrow_args(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], activation: str,
) -> tuple[int, int, int, int]:
    """Validates conv2d_narrow arguments (conv2d_epilogue's, with dilation 1, groups 1, float32
    and 1-8 output channels); returns the output shape (N, Cout, Ho, Wo)."""
    op = "conv2d_narrow"
    shape = check_conv2d_epilogue_args(input, weight, bias, residual, stride, padding, [1, 1], 1, activation, 1,
                                       op=op)
    if input.dtype != torch.float32:
        raise TypeError(f"{op}: input must be float32, got {input.dtype}")
    if weight.size(0) > NARROW_MAX_OUT_CHANNELS:
        raise ValueError(f"{op}: at most {NARROW_MAX_OUT_CHANNELS} output channels, got {weight.size(0)}")
    return shape


def check_gdn_args(input: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> None:
    """Validates gdn arguments (effective beta [C] and gamma [C, C])."""
    op = "gdn"
    check_floating(op, "input", input)
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be 4-D [N, C, H, W], got shape {list(input.shape)}")
    for name, t in (("beta", beta), ("gamma", gamma)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")
    if beta.dtype != input.dtype or gamma.dtype != input.dtype:
        raise TypeError(f"{op}: beta and gamma must have the input dtype {input.dtype}, "
                        f"got {beta.dtype} and {gamma.dtype}")
    if beta.device != input.device or gamma.device != input.device:
        raise ValueError(f"{op}: beta and gamma must be on the input device {input.device}")
    c = input.size(1)
    if beta.dim() != 1 or beta.size(0) != c:
        raise ValueError(f"{op}: beta must have shape [{c}], got {list(beta.shape)}")
    if gamma.dim() != 2 or tuple(gamma.shape) != (c, c):
        raise ValueError(f"{op}: gamma must have shape [{c}, {c}], got {list(gamma.shape)}")


def check_to_channels_last_args(input: torch.Tensor, dtype: torch.dtype | None) -> None:
    """Validates to_channels_last arguments."""
    op = "to_channels_last"
    check_floating(op, "input", input)
    if input.dim() != 4:
        raise ValueError(f"{op}: input must be 4-D [N, C, H, W], got shape {list(input.shape)}")
    if dtype is not None and not dtype.is_floating_point:
        raise TypeError(f"{op}: dtype must be a floating-point type, got {dtype}")
