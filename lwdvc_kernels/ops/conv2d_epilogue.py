"""``conv2d_epilogue``: a 2-D convolution whose epilogue is fused into the same pass.

``out = pixel_shuffle(act(conv2d(input, weight, bias)), upscale) + residual``: bias, ReLU or
LeakyReLU, the residual add and the PixelShuffle store cost no extra pass over memory.
Inference only (no autograd). Backends: ``"auto"`` (the dispatcher: C++ CPU kernel with oneDNN
post-ops, CUDA implicit-GEMM kernel), ``"reference"`` (eager PyTorch, the oracle) and
``"triton"`` (implicit GEMM; CUDA devices, or CPU under ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch._prims_common import suggest_memory_format

from lwdvc_kernels.ops.fused_validation import check_conv2d_epilogue_args, check_conv2d_narrow_args
from lwdvc_kernels.ops.reference.conv2d_epilogue import conv2d_epilogue_reference
from lwdvc_kernels.ops.registry import AUTO, REFERENCE, check_backend


def conv2d_epilogue_fake(input, weight, bias, residual, stride, padding, dilation, groups, activation,
                         negative_slope, upscale):
    shape = check_conv2d_epilogue_args(input, weight, bias, residual, stride, padding, dilation, groups,
                                       activation, upscale)
    return input.new_empty(shape).contiguous(memory_format=suggest_memory_format(input))


def conv2d_epilogue_kernel(*args):
    check_conv2d_epilogue_args(*args[:9], args[10])
    return conv2d_epilogue_reference(*args)


def conv2d_narrow_fake(input, weight, bias, residual, stride, padding, activation, negative_slope):
    shape = check_conv2d_narrow_args(input, weight, bias, residual, stride, padding, activation)
    return input.new_empty(shape).contiguous(memory_format=suggest_memory_format(input))


def conv2d_narrow_kernel(input, weight, bias, residual, stride, padding, activation, negative_slope):
    check_conv2d_narrow_args(input, weight, bias, residual, stride, padding, activation)
    return conv2d_epilogue_reference(input, weight, bias, residual, stride, padding, [1, 1], 1, activation,
                                     negative_slope, 1)


def _pair(value: int | Sequence[int]) -> list[int]:
    return [int(value)] * 2 if isinstance(value, int) else [int(v) for v in value]


def conv2d_epilogue(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    activation: str = "none",
    negative_slope: float = 0.01,
    upscale: int = 1,
    backend: str = "auto",
) -> torch.Tensor:
    """Convolution + bias + activation + PixelShuffle store + residual add, fused.

    Args:
        input: [N, Cin, H, W], NCHW or channels_last.
        weight: [Cout, Cin/groups, kh, kw], same dtype and device.
        bias: [Cout] or None.
        residual: [N, Cout/upscale^2, Ho*upscale, Wo*upscale] added after the activation, or None.
        stride, padding, dilation, groups: as :func:`torch.nn.functional.conv2d` (numeric padding).
        activation: ``"none"``, ``"relu"`` or ``"leaky_relu"`` (with ``negative_slope``).
        upscale: PixelShuffle factor r (1: no shuffle); r^2 must divide Cout.
        backend: ``"auto"``, ``"reference"`` or ``"triton"``.

    Returns:
        [N, Cout/upscale^2, Ho*upscale, Wo*upscale] in the input's memory format.
    """
    check_backend("conv2d_epilogue", backend)
    args = (input, weight, bias, residual, _pair(stride), _pair(padding), _pair(dilation), int(groups),
            str(activation), float(negative_slope), int(upscale))
    shape = check_conv2d_epilogue_args(*args[:9], args[10])
    if backend == AUTO:
        return torch.ops.lwdvc.conv2d_epilogue(*args)
    if backend == REFERENCE:
        return conv2d_epilogue_reference(*args)
    from lwdvc_kernels.ops.triton.conv2d_epilogue import conv2d_epilogue_triton

    return conv2d_epilogue_triton(*args, shape)


def narrow_conv_supported() -> bool:
    """Whether :func:`conv2d_narrow`'s CPU kernel (AVX-512) runs on this machine."""
    from lwdvc_kernels.ops._extension import EXTENSION

    return bool(EXTENSION is not None and EXTENSION.cpu_narrow_conv())


@contextlib.contextmanager
def narrow_conv_in_epilogue(enabled: bool):
    """``with narrow_conv_in_epilogue(False): ...`` runs ``conv2d_epilogue`` (and so every
    optimised module) with oneDNN only, e.g. to time the narrow kernel's effect on a whole
    decoder in one process. Process-wide; restores the previous setting on exit."""
    from lwdvc_kernels.ops._extension import EXTENSION

    if EXTENSION is None:
        yield
        return
    previous = EXTENSION.narrow_conv_in_epilogue()
    EXTENSION.set_narrow_conv_in_epilogue(bool(enabled))
    try:
        yield
    finally:
        EXTENSION.set_narrow_conv_in_epilogue(previous)


def conv2d_narrow(
    input: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    residual: torch.Tensor | None = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    activation: str = "none",
    negative_slope: float = 0.01,
) -> torch.Tensor:
    """``act(conv2d(input, weight, bias)) + residual`` for few output channels, on the CPU.

    The direct-convolution kernel that ``conv2d_epilogue`` uses on CPU where oneDNN would pad
    1-8 output channels to a 16-wide block (e.g. 3x3, 64 -> 2: 3.5x faster than oneDNN here);
    callable directly for tests and benchmarks. float32, groups 1, dilation 1, CPU with AVX-512
    (:func:`narrow_conv_supported`).

    Args:
        input: [N, Cin, H, W] float32 on CPU, NCHW or channels_last.
        weight: [Cout, Cin, kh, kw] with 1 <= Cout <= 8.
        bias: [Cout] or None.
        residual: [N, Cout, Ho, Wo] added after the activation, or None.
        stride, padding: as :func:`torch.nn.functional.conv2d` (numeric padding).
        activation: ``"none"``, ``"relu"`` or ``"leaky_relu"`` (with ``negative_slope``).

    Returns:
        [N, Cout, Ho, Wo] in the input's memory format.
    """
    args = (input, weight, bias, residual, _pair(stride), _pair(padding), str(activation), float(negative_slope))
    check_conv2d_narrow_args(*args[:7])
    return torch.ops.lwdvc.conv2d_narrow(*args)
