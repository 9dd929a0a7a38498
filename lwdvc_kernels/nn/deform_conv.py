"""Deformable convolution (DCNv1, no modulation mask) with its own offset-predicting conv.

The module owns two sets of parameters, named as in the common DCNv1 "pack" layout:

* ``weight`` [C_out, C_in, kH, kW] (no bias unless ``bias=True``): the deformable kernel.
* ``conv_offset`` (``nn.Conv2d`` with bias): maps an offset feature [N, C_off_in, H, W] to
  offsets [N, G * 2 * kH * kW, H', W'] for ``G`` deformable groups.

Offset layout (the DCNv1 / torchvision layout): for deformable group ``g`` and kernel tap
``(i, j)``, channel ``g * 2*kH*kW + 2*(i*kW + j)`` holds the vertical displacement (dy) and the
next channel the horizontal one (dx). Sampling is bilinear with zeros outside the map.

Deformable groups and pruning: input channels are split into ``G`` contiguous groups, every
channel of group ``g`` being sampled with group ``g``'s offsets. The default split is equal
(C_in divisible by G). A channel-pruned layer can keep any number of channels per group: pass
``group_sizes`` (or build it with :meth:`DeformConv2d.select_channels`); the forward pass hands
them to the op (``offset_group_sizes``), whose CPU kernel samples uneven groups directly; the
torchvision path expands the offsets to one offset group per input channel (exact). Output channels and the offset
conv's input channels carry no such constraint; the
offset channels themselves are never prunable.

Channel counts are read from the parameters (``weight``: C_out, C_in; ``conv_offset.weight``:
C_off_in), so a handler may slice the parameters in place. If it removes input channels it must
also call :meth:`DeformConv2d.keep_input_channels` (or :meth:`set_group_sizes`) with the kept
indices, so that every remaining channel keeps its group's offsets; the forward pass raises if
``group_sizes`` no longer sums to the weight's input channels.

The forward pass calls :func:`deform_conv2d_for_layer`, which runs
:func:`lwdvc_kernels.ops.deform_conv2d` (same arguments as ``torchvision.ops.deform_conv2d``)
with ``backend="auto"`` (the dispatcher: the project's C++ kernel) on CPU when the extension is
built and no gradient is needed, with ``backend="torchvision"`` otherwise (CUDA, training, other
dtypes). It is registered with ``torch.fx.wrap`` so a symbolic trace keeps it as one
``call_function`` node whose arguments are (input, offset, weight, bias, stride, padding,
dilation). Under autocast the
offsets may arrive in another dtype than ``x`` (``conv_offset`` is autocast); the call then runs
in autocast's dtype when the CPU kernel has it (bfloat16), else in float32.

Non-finite offsets (a diverged training run) make the torchvision path raise
:class:`~lwdvc_kernels.ops.deform_conv2d_torchvision.NonFiniteOffsetError`, whose message names
the layer; its kernel would otherwise read out of bounds. The C++ kernel samples zeros there.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.fx
from torch import nn
from torch.nn.modules.utils import _pair

from lwdvc_kernels.ops.deform_conv2d import autocast_enabled, cpu_kernel_applies, deform_conv2d
from lwdvc_kernels.ops.deform_conv2d_torchvision import NonFiniteOffsetError
from lwdvc_kernels.ops.registry import AUTO, TORCHVISION

__all__ = ["DeformConv2d", "deform_conv2d_for_layer"]


def deform_conv2d_for_layer(input: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None, stride, padding, dilation, *,
                            offset_group_sizes: Sequence[int] | None = None) -> torch.Tensor:
    """:func:`lwdvc_kernels.ops.deform_conv2d` through the dispatcher where it runs the C++ CPU
    kernel (:func:`cpu_kernel_applies`, in autocast's dtype under autocast), through torchvision
    elsewhere; [N, Cout, Ho, Wo]."""
    dtype = torch.get_autocast_dtype(input.device.type) if autocast_enabled(input.device) else input.dtype
    backend = AUTO if cpu_kernel_applies(input.device, dtype, (input, offset, weight, bias)) else TORCHVISION
    return deform_conv2d(input, offset, weight, bias, stride, padding, dilation, offset_group_sizes=offset_group_sizes,
                         backend=backend)


torch.fx.wrap("deform_conv2d_for_layer")


def _equal_split(channels: int, groups: int) -> tuple[int, ...]:
    if groups < 1:
        raise ValueError(f"deformable_groups must be >= 1, got {groups}")
    if channels % groups:
        raise ValueError(
            f"in_channels={channels} is not divisible by deformable_groups={groups}; "
            "pass group_sizes to give the number of input channels of every deformable group"
        )
    return (channels // groups,) * groups


class DeformConv2d(nn.Module):
    """DCNv1 layer: ``y = deform_conv(x, conv_offset(offset_feature), weight)``.

    Args:
        in_channels: channels of the sampled input ``x``.
        out_channels: output channels.
        kernel_size: int or (kH, kW).
        stride, padding, dilation: as ``nn.Conv2d`` (shared by ``conv_offset``).
        deformable_groups: number of offset groups ``G``.
        offset_in_channels: channels of the offset feature (default ``in_channels``).
        bias: add a learnt per-output-channel bias (the DCNv1 pack has none).
        group_sizes: input channels per deformable group, length ``G``, summing to
            ``in_channels``; default equal split.

    Shape:
        x [N, C_in, H, W], offset_feature [N, C_off_in, H, W] -> [N, C_out, H', W'].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        deformable_groups: int = 1,
        offset_in_channels: int | None = None,
        bias: bool = False,
        group_sizes: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(deformable_groups, int) or deformable_groups < 1:
            raise ValueError(f"deformable_groups must be a positive int, got {deformable_groups!r}")
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.deformable_groups = deformable_groups
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)
        self.conv_offset = nn.Conv2d(
            in_channels if offset_in_channels is None else offset_in_channels,
            deformable_groups * 2 * taps,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        self.register_buffer("channel_group", torch.zeros(in_channels, dtype=torch.long), persistent=False)
        self.set_group_sizes(_equal_split(in_channels, deformable_groups) if group_sizes is None else group_sizes)
        self.reset_parameters()

    @property
    def in_channels(self) -> int:
        """Channels of the sampled input (``weight.shape[1]``)."""
        return self.weight.shape[1]

    @property
    def out_channels(self) -> int:
        """Output channels (``weight.shape[0]``)."""
        return self.weight.shape[0]

    @property
    def offset_in_channels(self) -> int:
        """Channels of the offset feature (``conv_offset.weight.shape[1]``)."""
        return self.conv_offset.weight.shape[1]

    def set_group_sizes(self, group_sizes: Sequence[int]) -> None:
        """Set how many (contiguous) input channels each deformable group holds.

        Args:
            group_sizes: ``deformable_groups`` non-negative ints summing to ``in_channels``.
        """
        sizes = tuple(int(s) for s in group_sizes)
        if len(sizes) != self.deformable_groups or sum(sizes) != self.in_channels or min(sizes) < 0:
            raise ValueError(
                f"group_sizes={sizes} must have deformable_groups={self.deformable_groups} "
                f"non-negative entries summing to in_channels={self.in_channels}"
            )
        self.group_sizes = sizes
        self.uniform_groups = len(set(sizes)) == 1
        owners = [group for group, size in enumerate(sizes) for _ in range(size)]
        self.channel_group = torch.tensor(owners, dtype=torch.long, device=self.channel_group.device)

    def group_sizes_after(self, in_keep: torch.Tensor | Sequence[int]) -> tuple[int, ...]:
        """Group sizes once only the input channels ``in_keep`` (indices) remain."""
        owners = [group for group, size in enumerate(self.group_sizes) for _ in range(size)]
        counts = [0] * self.deformable_groups
        for index in torch.as_tensor(in_keep, dtype=torch.long).flatten().tolist():
            if not 0 <= index < len(owners):
                raise ValueError(f"input channel index {index} out of range [0, {len(owners)})")
            counts[owners[index]] += 1
        return tuple(counts)

    def keep_input_channels(self, in_keep: torch.Tensor | Sequence[int]) -> None:
        """Record that only the input channels ``in_keep`` remain (after slicing ``weight``
        in place along dim 1). ``in_keep`` holds indices into the channels before slicing."""
        sizes = self.group_sizes_after(in_keep)
        if sum(sizes) != self.in_channels:
            raise ValueError(
                f"{sum(sizes)} kept input channels but weight has {self.in_channels}: slice weight "
                "along dim 1 with the same indices first"
            )
        self.set_group_sizes(sizes)

    def reset_parameters(self) -> None:
        """Uniform kernel init (1/sqrt(fan_in)) and zero offsets, as DCNv1 packs start."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = fan_in**-0.5
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()
            self.conv_offset.weight.zero_()
            self.conv_offset.bias.zero_()

    def forward(self, x: torch.Tensor, offset_feature: torch.Tensor) -> torch.Tensor:
        """Predict offsets from ``offset_feature`` and sample ``x`` with them.

        Args:
            x: [N, C_in, H, W] map to be sampled.
            offset_feature: [N, C_off_in, H, W] map the offsets are predicted from.

        Returns:
            [N, C_out, H', W'].
        """
        if not isinstance(x, torch.fx.Proxy):
            self._check_input("x", x, self.in_channels, None)
            self._check_input("offset_feature", offset_feature, self.offset_in_channels, x)
        return self.apply_offsets(x, self.conv_offset(offset_feature))

    def apply_offsets(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Deformable convolution of ``x`` with given offsets.

        Args:
            x: [N, C_in, H, W].
            offset: [N, G * 2 * kH * kW, H', W'] in the layout described in the module docstring.

        Returns:
            [N, C_out, H', W'].
        """
        if not isinstance(x, torch.fx.Proxy):
            if sum(self.group_sizes) != self.in_channels:
                raise ValueError(
                    f"DeformConv2d: group_sizes {self.group_sizes} sum to {sum(self.group_sizes)} but weight "
                    f"has {self.in_channels} input channels; call keep_input_channels() after pruning"
                )
            self._check_input("x", x, self.in_channels, None)
            expected = self.deformable_groups * 2 * self.kernel_size[0] * self.kernel_size[1]
            self._check_input("offset", offset, expected, x)
        sizes = None if self.uniform_groups else self.group_sizes
        try:
            return deform_conv2d_for_layer(x, offset, self.weight, self.bias, self.stride, self.padding,
                                           self.dilation, offset_group_sizes=sizes)
        except NonFiniteOffsetError as error:
            raise NonFiniteOffsetError(f"DeformConv2d({self.extra_repr()}): {error}") from None

    def _check_input(self, name: str, t: torch.Tensor, channels: int, like: torch.Tensor | None) -> None:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"DeformConv2d: {name} must be a Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] != channels:
            raise ValueError(
                f"DeformConv2d: {name} must have shape [N, {channels}, H, W], got {tuple(t.shape)}"
            )
        if not t.is_floating_point():
            raise TypeError(f"DeformConv2d: {name} must be floating point, got {t.dtype}")
        if like is not None:
            if t.shape[0] != like.shape[0]:
                raise ValueError(
                    f"DeformConv2d: {name} batch {t.shape[0]} differs from the input's {like.shape[0]}"
                )
            if t.device != like.device or (t.dtype != like.dtype and not autocast_enabled(like.device)):
                raise ValueError(
                    f"DeformConv2d: {name} is {t.dtype} on {t.device}, the input {like.dtype} on {like.device}"
                )

    @torch.no_grad()
    def select_channels(
        self,
        in_keep: torch.Tensor | Sequence[int] | None = None,
        out_keep: torch.Tensor | Sequence[int] | None = None,
        offset_in_keep: torch.Tensor | Sequence[int] | None = None,
    ) -> DeformConv2d:
        """A smaller layer that keeps only the given channels and computes the same outputs.

        Args:
            in_keep: sorted indices of the kept input channels of ``x`` (default all).
            out_keep: sorted indices of the kept output channels (default all).
            offset_in_keep: kept input channels of the offset feature (default all).

        Returns:
            A new ``DeformConv2d`` whose ``group_sizes`` record how many kept input channels
            each deformable group retains, so the remaining channels see the same offsets.
        """

        def index(keep, size: int, name: str) -> torch.Tensor:
            if keep is None:
                return torch.arange(size)
            keep = torch.as_tensor(keep, dtype=torch.long).flatten()
            if keep.numel() == 0 or int(keep.min()) < 0 or int(keep.max()) >= size:
                raise ValueError(f"{name} must be non-empty indices in [0, {size}), got {keep.tolist()}")
            if keep.numel() > 1 and not bool((keep[1:] > keep[:-1]).all()):
                raise ValueError(f"{name} must be strictly increasing, got {keep.tolist()}")
            return keep

        in_idx = index(in_keep, self.in_channels, "in_keep")
        out_idx = index(out_keep, self.out_channels, "out_keep")
        off_idx = index(offset_in_keep, self.offset_in_channels, "offset_in_keep")
        new_sizes = self.group_sizes_after(in_idx)
        smaller = DeformConv2d(
            len(in_idx),
            len(out_idx),
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.deformable_groups,
            offset_in_channels=len(off_idx),
            bias=self.bias is not None,
            group_sizes=new_sizes,
        ).to(device=self.weight.device, dtype=self.weight.dtype)
        smaller.weight.copy_(self.weight[out_idx][:, in_idx])
        if self.bias is not None:
            smaller.bias.copy_(self.bias[out_idx])
        smaller.conv_offset.weight.copy_(self.conv_offset.weight[:, off_idx])
        smaller.conv_offset.bias.copy_(self.conv_offset.bias)
        return smaller

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, deformable_groups={self.deformable_groups}"
        )
        if not self.uniform_groups:
            text += f", group_sizes={self.group_sizes}"
        return text + f", bias={self.bias is not None}"
