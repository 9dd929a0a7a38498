"""CPU strategy: layout and dtype conversion around a fused module.

Measured on the project's CPU (see docs/results/optimize.md): oneDNN convolutions run faster in
channels_last than in NCHW for the irregular channel counts a compacted decoder has, and in
bfloat16 channels_last they use the AVX512-BF16 dot products; in NCHW bfloat16 they do not. So the CPU strategy keeps
every 4-D activation in channels_last and, when asked, in bfloat16, converting only at the
decoder module's boundary.
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc_kernels import ops
from lwdvc_kernels.nn import DeformConv2d
from lwdvc_kernels.ops.deform_conv2d import KERNEL_DTYPES as DEFORM_CONV_KERNEL_DTYPES

__all__ = ["BoundaryCast", "Float32Island", "keep_freed_memory", "needs_float32", "to_cpu_layout"]

# glibc's mallopt parameters (malloc.h) and the largest value its int argument carries.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
LARGEST_TRIM_THRESHOLD = 2**31 - 1


def needs_float32(module: nn.Module, dtype: torch.dtype | None) -> bool:
    """True for a layer without a kernel for ``dtype``: the deformable conv (torchvision's kernels
    have no bfloat16), unless it runs on CPU in a dtype of the engine's kernel (float32, bfloat16)."""
    if not isinstance(module, DeformConv2d):
        return False
    on_cpu = module.weight.device.type == "cpu"
    return not (on_cpu and ops.EXTENSION is not None and dtype in DEFORM_CONV_KERNEL_DTYPES)


def _convert_input(x, dtype: torch.dtype | None, channels_last: bool):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return x
    if channels_last and x.dim() == 4:
        if x.is_contiguous(memory_format=torch.channels_last) and dtype in (None, x.dtype):
            return x
        return ops.to_channels_last(x, dtype)  # one tiled pass for the layout and the dtype
    return x if dtype is None else x.to(dtype)


def _restore_output(y, dtype: torch.dtype | None, contiguous: bool):
    if isinstance(y, torch.Tensor):
        if y.is_floating_point() and dtype is not None:
            y = y.to(dtype)
        return y.contiguous() if contiguous else y
    if isinstance(y, (tuple, list)):
        return type(y)(_restore_output(v, dtype, contiguous) for v in y)
    if isinstance(y, dict):
        return {k: _restore_output(v, dtype, contiguous) for k, v in y.items()}
    return y


class BoundaryCast(nn.Module):
    """Runs ``inner`` in ``compute_dtype`` / channels_last and returns outputs as the caller had them.

    Args:
        inner: the (fused) module, already converted to ``compute_dtype`` and channels_last.
        compute_dtype: dtype inside (None: keep the input dtype).
        channels_last: convert 4-D floating inputs to channels_last.
        contiguous_outputs: return NCHW-contiguous outputs. Off by default: outputs stay in
            channels_last (same values and shapes; every PyTorch op accepts them) because the
            copy back costs a full pass per output, and a following optimised module would
            convert them back again.

    Floating outputs are cast back to the dtype of the first floating input.
    """

    def __init__(self, inner: nn.Module, compute_dtype: torch.dtype | None, channels_last: bool,
                 contiguous_outputs: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.compute_dtype = compute_dtype
        self.channels_last = channels_last
        self.contiguous_outputs = contiguous_outputs

    def forward(self, *args, **kwargs):
        floating = [a for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
        out_dtype = floating[0].dtype if floating and self.compute_dtype is not None else None
        args = tuple(_convert_input(a, self.compute_dtype, self.channels_last) for a in args)
        kwargs = {k: _convert_input(v, self.compute_dtype, self.channels_last) for k, v in kwargs.items()}
        return _restore_output(self.inner(*args, **kwargs), out_dtype, self.contiguous_outputs)


class Float32Island(nn.Module):
    """Runs a layer without low-precision kernels in float32 inside a low-precision module.

    Shape: whatever ``inner`` takes; floating outputs come back in the first floating input's dtype.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.float()

    def _apply(self, fn, recurse=True):  # keep float32 through module.to(dtype)
        return self

    def forward(self, *args):
        dtype = next((a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        out = self.inner(*(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args))
        return _restore_output(out, dtype, contiguous=False)


def _isolate_float32_layers(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    if needs_float32(module, dtype):
        return Float32Island(module)
    for name, child in list(module.named_children()):
        if needs_float32(child, dtype):
            setattr(module, name, Float32Island(child))
        elif not isinstance(child, Float32Island):
            _isolate_float32_layers(child, dtype)
    return module


def to_cpu_layout(module: nn.Module, dtype: torch.dtype | None, channels_last: bool) -> nn.Module:
    """Convert parameters and buffers (floating ones) to ``dtype`` and 4-D ones to channels_last, in place.

    Layers without a kernel for ``dtype`` (:func:`needs_float32`) stay float32 inside a
    :class:`Float32Island`. Returns the module (a new wrapper when the root itself is such a layer).
    """
    if dtype not in (None, torch.float32):
        module = _isolate_float32_layers(module, dtype)
        module.to(dtype)
    if channels_last:
        for sub in module.modules():
            for t in list(sub._parameters.values()) + list(sub._buffers.values()):
                if t is not None and t.dim() == 4 and t.is_floating_point():
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
    return module


def keep_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse instead of returning it to the system.

    By default every tensor above the mmap threshold (32 MiB at most) is a fresh ``mmap`` whose
    pages fault in on first touch, and freed heap tops are trimmed: measured here, that costs
    a dense decoder a third of its time (1482 -> 891 ms CPU time for a 448x256 frame). This
    sets ``M_MMAP_MAX = 0`` and the largest ``M_TRIM_THRESHOLD`` mallopt takes (2 GiB - 1) for
    the whole process (the same as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`` in
    the environment, or a caching allocator such as jemalloc). The process then keeps its peak
    memory. Opt-in.

    Returns:
        True when glibc accepted both settings (False on other C libraries).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]  # int mallopt(int param, int value)
    libc.mallopt.restype = ctypes.c_int
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, LARGEST_TRIM_THRESHOLD))
