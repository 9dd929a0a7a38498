"""``deform_conv2d``: DCNv1 deformable convolution (offsets, no modulation mask), fast on CPU.

The op ``torch.ops.lwdvc.deform_conv2d(input, weight, offset, bias, stride, padding, dilation,
groups, offset_groups, offset_group_sizes=None)`` takes torchvision's offset layout (channel
``g*2*kh*kw + 2*(i*kw + j)`` holds dy of tap (i, j) of offset group g, the next channel dx) and
samples bilinearly with zeros outside the input, exactly like ``torchvision.ops.deform_conv2d``.
``offset_group_sizes`` lets the groups hold unequal numbers of consecutive channels (a compacted
layer) without expanding the offsets to one group per channel. Its kernels:

* CPU (C++, float32 and bfloat16): channels-last sampling of row tiles into a column matrix that
  stays in cache, multiplied by oneDNN; output in the input's memory format (NCHW or
  channels_last). bfloat16: positions and blending in float32, columns and GEMM operands in
  bfloat16 with float32 accumulation.
* CUDA: there is no CUDA kernel of our own; the op runs torchvision's CUDA kernel, which stays
  the GPU path.
* Meta / fake tensors: shape inference for ``torch.compile`` and ``torch.export``.

Inference only: the op has no autograd formula. Backends of :func:`deform_conv2d`: ``"auto"``
(the dispatcher, ``torch.ops.lwdvc.deform_conv2d``: the C++ kernel on CPU, torchvision's on
CUDA), ``"torchvision"`` (torchvision's kernel, differentiable) and ``"reference"`` (plain
PyTorch, differentiable: the oracle). :func:`cpu_kernel_applies` says where ``"auto"`` runs the
C++ kernel; :class:`lwdvc_kernels.nn.DeformConv2d` uses it to send training, CUDA and other
dtypes to torchvision.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._prims_common import suggest_memory_format

from lwdvc_kernels.ops._extension import EXTENSION
from lwdvc_kernels.ops.deform_conv2d_torchvision import deform_conv2d_torchvision
from lwdvc_kernels.ops.deform_conv2d_validation import check_deform_conv2d_args
from lwdvc_kernels.ops.reference.deform_conv2d import deform_conv2d_reference
from lwdvc_kernels.ops.registry import AUTO, REFERENCE, check_backend

# dtypes of the C++ CPU kernel.
KERNEL_DTYPES = (torch.float32, torch.bfloat16)


def deform_conv2d_fake(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                       offset_group_sizes=None):
    shape = check_deform_conv2d_args(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                                     offset_group_sizes)
    return input.new_empty(shape).contiguous(memory_format=suggest_memory_format(input))


def deform_conv2d_kernel(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                         offset_group_sizes=None):
    """The op's kernel on CUDA, and on every device without the extension: torchvision's."""
    check_deform_conv2d_args(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                             offset_group_sizes)
    return deform_conv2d_torchvision(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                                     offset_group_sizes)


def _pair(value: int | Sequence[int]) -> list[int]:
    return [int(value)] * 2 if isinstance(value, int) else [int(v) for v in value]


#: Whether autocast knows a device type, looked up once per type outside of tracing: torch 2.11's
#: dynamo cannot trace ``torch.amp.is_autocast_available`` (a graph break), a dict look-up it can.
_AUTOCAST_AVAILABLE: dict[str, bool] = {kind: torch.amp.is_autocast_available(kind)
                                        for kind in ("cpu", "cuda", "meta")}


def autocast_enabled(device: torch.device) -> bool:
    """True when autocast is on for ``device``'s type (False for types autocast does not know,
    such as meta)."""
    available = _AUTOCAST_AVAILABLE.get(device.type)
    if available is None:
        available = _AUTOCAST_AVAILABLE[device.type] = torch.amp.is_autocast_available(device.type)
    return available and torch.is_autocast_enabled(device.type)


def cpu_kernel_applies(device: torch.device, dtype: torch.dtype, tensors) -> bool:
    """True when ``backend="auto"`` runs the C++ CPU kernel for ``tensors`` computed in ``dtype``
    on ``device``: CPU, the extension loaded, float32 or bfloat16, and no gradient needed."""
    if device.type != "cpu" or EXTENSION is None or dtype not in KERNEL_DTYPES:
        return False
    return not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors))


def _op_args(input, offset, weight, bias, stride, padding, dilation, offset_group_sizes) -> tuple:
    """The op's arguments, groups and offset_groups inferred as torchvision does (the op's own
    checks then report any inconsistency)."""
    if weight.dim() != 4 or weight.size(1) == 0 or weight.size(2) * weight.size(3) == 0:
        raise ValueError(
            f"deform_conv2d: weight must be 4-D [Cout, Cin/groups, kh, kw], got shape {list(weight.shape)}")
    groups = max(1, input.size(1) // weight.size(1)) if input.dim() == 4 else 1
    offset_groups = max(1, offset.size(1) // (2 * weight.size(2) * weight.size(3))) if offset.dim() == 4 else 1
    sizes = None if offset_group_sizes is None else [int(v) for v in offset_group_sizes]
    return (input, weight, offset, bias, _pair(stride), _pair(padding), _pair(dilation), groups, offset_groups,
            sizes)


def deform_conv2d(
    input: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    *,
    offset_group_sizes: Sequence[int] | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Deformable convolution, argument for argument like ``torchvision.ops.deform_conv2d``
    without ``mask``.

    Args:
        input: [N, Cin, H, W], NCHW or channels_last.
        offset: [N, 2*offset_groups*kh*kw, Ho, Wo] (torchvision layout; offset_groups divides Cin).
        weight: [Cout, Cin/groups, kh, kw] (groups = Cin / weight.shape[1]).
        bias: [Cout] or None.
        stride, padding, dilation: int or pair, as :func:`torch.nn.functional.conv2d`.
        offset_group_sizes: consecutive input channels of each offset group (offset_groups
            entries >= 0 summing to Cin) when the groups are uneven, as in a compacted layer;
            None splits Cin equally (torchvision's rule).
        backend: ``"auto"`` (the dispatcher: the C++ kernel on CPU, inference only, float32 and
            bfloat16; torchvision's on CUDA), ``"torchvision"`` (differentiable) or
            ``"reference"`` (plain PyTorch, differentiable). Under autocast every tensor is first
            cast to the autocast dtype where ``"auto"`` runs the C++ kernel in it, else to float32.

    Returns:
        [N, Cout, Ho, Wo] in the input's memory format (NCHW or channels_last).
    """
    check_backend("deform_conv2d", backend)
    for name, t in (("input", input), ("offset", offset), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"deform_conv2d: {name} must be a tensor, got {type(t).__name__}")
    if autocast_enabled(input.device):
        dtype = torch.get_autocast_dtype(input.device.type)
        if not (backend == AUTO and cpu_kernel_applies(input.device, dtype, (input, offset, weight, bias))):
            dtype = torch.float32
        cast = [None if t is None else t.to(dtype) for t in (input, offset, weight, bias)]
        with torch.autocast(input.device.type, enabled=False):
            return deform_conv2d(*cast, stride, padding, dilation, offset_group_sizes=offset_group_sizes,
                                 backend=backend)
    args = _op_args(input, offset, weight, bias, stride, padding, dilation, offset_group_sizes)
    check_deform_conv2d_args(*args)
    if backend == AUTO:
        return torch.ops.lwdvc.deform_conv2d(*args)
    if backend == REFERENCE:
        return deform_conv2d_reference(*args)
    return deform_conv2d_torchvision(*args)
