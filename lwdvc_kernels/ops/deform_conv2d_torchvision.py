"""``deform_conv2d`` through torchvision's kernel (``backend="torchvision"``): differentiable, the
op's CUDA kernel and its kernel everywhere without the extension.

torchvision's kernels read out of bounds (and crash the process) at a NaN sampling position, so
non-finite offsets never reach them: :func:`deform_conv2d_torchvision` raises
:class:`NonFiniteOffsetError` instead. (The C++ CPU kernel and the reference sample zeros at
non-finite positions.) The check needs concrete values, so it is skipped for meta and fake
tensors and while ``torch.compile`` / ``torch.export`` trace."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch._prims_common import suggest_memory_format

__all__ = ["NonFiniteOffsetError", "check_offsets_finite", "deform_conv2d_torchvision"]


class NonFiniteOffsetError(FloatingPointError):
    """The offsets of a deformable convolution hold NaN or inf (typically: training diverged)."""


def check_offsets_finite(offset: torch.Tensor, where: str = "deform_conv2d") -> None:
    """Raise :class:`NonFiniteOffsetError` when ``offset`` holds a NaN or inf (concrete tensors
    only: nothing is checked for meta or fake tensors or while tracing)."""
    from torch._subclasses.fake_tensor import is_fake

    if offset.device.type == "meta" or torch.compiler.is_compiling() or is_fake(offset):
        return
    finite = torch.isfinite(offset.detach())
    if not bool(finite.all()):
        bad = int(finite.numel() - finite.sum())
        raise NonFiniteOffsetError(
            f"{where}: the offsets hold {bad} non-finite value(s) (NaN/inf); torchvision's kernel cannot "
            "sample at them")


def deform_conv2d_torchvision(
    input: torch.Tensor, weight: torch.Tensor, offset: torch.Tensor, bias: torch.Tensor | None,
    stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int], groups: int, offset_groups: int,
    offset_group_sizes: Sequence[int] | None = None,
) -> torch.Tensor:
    """DCNv1 through ``torch.ops.torchvision.deform_conv2d`` (differentiable), for validated
    arguments.

    torchvision has no reduced-precision CPU kernel, so float16/bfloat16 CPU inputs are computed
    in float32 and the result rounded once.

    Uneven offset groups (``offset_group_sizes``) are run as one offset group per input channel,
    each channel given its group's offsets.

    Raises:
        NonFiniteOffsetError: ``offset`` holds a NaN or inf.

    Args:
        input: [N, Cin, H, W]; weight: [Cout, Cin/groups, kh, kw];
        offset: [N, 2*offset_groups*kh*kw, Ho, Wo]; bias: [Cout] or None.
        offset_group_sizes: consecutive input channels per offset group, or None (equal split).

    Returns:
        [N, Cout, Ho, Wo] in the input's dtype and memory format.
    """
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    check_offsets_finite(offset)
    if offset_group_sizes is not None:
        owners = [group for group, size in enumerate(offset_group_sizes) for _ in range(size)]
        owner = torch.tensor(owners, dtype=torch.long, device=offset.device)
        offset = offset.unflatten(1, (offset_groups, -1)).index_select(1, owner).flatten(1, 2)
        offset_groups = input.size(1)

    compute = torch.float32 if input.device.type == "cpu" and input.dtype in (torch.float16, torch.bfloat16) \
        else input.dtype
    x, w, off = (t.to(compute) for t in (input, weight, offset))
    b = bias.to(compute) if bias is not None else x.new_zeros(weight.size(0))
    no_mask = x.new_zeros(x.size(0), 1)
    out = torch.ops.torchvision.deform_conv2d(
        x, w, off, no_mask, b, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1],
        groups, offset_groups, False,
    )
    return out.to(input.dtype).contiguous(memory_format=suggest_memory_format(input))
