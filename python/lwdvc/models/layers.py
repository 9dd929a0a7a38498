"""Building blocks shared by the DCVC-family codecs.

Convolution helpers, sub-pixel up-sampling, residual blocks, the backward flow warp with the
official grid normalisation, bilinear rescaling, and the SpyNet motion estimator (encoder side).
Parameter names follow the official implementations so that state_dict keys match.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "scale_channels", "conv3x3", "conv1x1", "subpel_conv3x3", "subpel_conv1x1", "flow_warp",
    "bilinear_downscale", "bilinear_upscale", "PreActResBlock", "LeakyResBlock", "ResBlock",
    "ResidualBlock", "ResidualBlockWithStride", "ResidualBlockUpsample", "SpyNetBasic", "SpyNet",
    "FlowWarp",
]


def scale_channels(channels: int, width: float, multiple: int = 2) -> int:
    """Channel count of a width-scaled model.

    Args:
        channels: channel count of the official (width 1.0) model.
        width: width factor (> 0). 1.0 returns ``channels`` unchanged.
        multiple: the result is a positive multiple of this (keeps channel splits valid).
    """
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if width == 1.0:
        return channels
    return max(multiple, int(round(channels * width / multiple)) * multiple)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution, padding 1."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1)


def conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution."""
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride)


def subpel_conv3x3(in_ch: int, out_ch: int, r: int = 1) -> nn.Sequential:
    """3x3 conv to ``out_ch * r**2`` channels followed by PixelShuffle(r): [N,in,H,W] -> [N,out,rH,rW]."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * r**2, kernel_size=3, padding=1),
                         nn.PixelShuffle(r))


def subpel_conv1x1(in_ch: int, out_ch: int, r: int = 1) -> nn.Sequential:
    """1x1 conv to ``out_ch * r**2`` channels followed by PixelShuffle(r)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch * r**2, kernel_size=1, padding=0),
                         nn.PixelShuffle(r))


def flow_warp(feature: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``feature`` by a pixel-unit flow (bilinear, border padding, align_corners).

    The sampling grid is ``linspace(-1, 1)`` per axis plus the flow divided by ``(size - 1) / 2``,
    as in the official codecs.

    Args:
        feature: [N, C, H, W].
        flow: [N, 2, H, W]; channel 0 is the horizontal (x) and channel 1 the vertical (y)
            displacement in pixels.

    Returns:
        [N, C, H, W] warped feature.
    """
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be [N, 2, H, W], got {tuple(flow.shape)}")
    if feature.dim() != 4 or feature.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"feature {tuple(feature.shape)} and flow {tuple(flow.shape)} "
                         "must be 4-D with the same spatial size")
    n, _, h, w = flow.shape
    horizontal = torch.linspace(-1.0, 1.0, w, device=flow.device, dtype=flow.dtype)
    vertical = torch.linspace(-1.0, 1.0, h, device=flow.device, dtype=flow.dtype)
    base = torch.cat([horizontal.view(1, 1, 1, w).expand(n, -1, h, -1),
                      vertical.view(1, 1, h, 1).expand(n, -1, -1, w)], 1)
    normalised = torch.cat([flow[:, 0:1] / ((feature.size(3) - 1.0) / 2.0),
                            flow[:, 1:2] / ((feature.size(2) - 1.0) / 2.0)], 1)
    grid = (base + normalised).permute(0, 2, 3, 1)
    return F.grid_sample(feature, grid, mode="bilinear", padding_mode="border",
                         align_corners=True)


def bilinear_downscale(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to half size (floor), align_corners=False: [N,C,H,W] -> [N,C,H//2,W//2]."""
    return F.interpolate(x, (x.size(2) // 2, x.size(3) // 2), mode="bilinear",
                         align_corners=False)


def bilinear_upscale(x: torch.Tensor) -> torch.Tensor:
    """Bilinear resize to double size, align_corners=False: [N,C,H,W] -> [N,C,2H,2W]."""
    return F.interpolate(x, (x.size(2) * 2, x.size(3) * 2), mode="bilinear",
                         align_corners=False)


class PreActResBlock(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` (a 1x1 ``adapt_conv`` maps x when channels differ).

    Shape: [N, in_ch, H, W] -> [N, out_ch, H, W].
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size, 1, padding=kernel_size // 2)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size, 1, padding=kernel_size // 2)
        self.adapt_conv = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu2(self.conv1(self.relu1(x))))
        identity = x if self.adapt_conv is None else self.adapt_conv(x)
        return identity + out


class LeakyResBlock(nn.Module):
    """``x + lrelu(conv(lrelu(conv(x))))`` with slope 0.1 (parameters under ``conv.0``/``conv.2``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride=1, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(channels, channels, 3, stride=1, padding=1), nn.LeakyReLU(0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class ResBlock(nn.Module):
    """Configurable residual block: ``x + last(conv2(act(conv1(first(x)))))``.

    Args:
        channels: input/output channels.
        slope: LeakyReLU slope; below 1e-4 a plain ReLU is used.
        start_from_relu: apply the activation to ``x`` before ``conv1``.
        end_with_relu: apply the activation after ``conv2``.
        bottleneck: ``conv1`` halves the channels and ``conv2`` restores them.
    """

    def __init__(self, channels: int, slope: float = 0.01, start_from_relu: bool = True,
                 end_with_relu: bool = False, bottleneck: bool = False) -> None:
        super().__init__()
        self.relu = nn.ReLU() if slope < 0.0001 else nn.LeakyReLU(negative_slope=slope)
        inner = channels // 2 if bottleneck else channels
        self.conv1 = nn.Conv2d(channels, inner, 3, padding=1)
        self.conv2 = nn.Conv2d(inner, channels, 3, padding=1)
        self.start_from_relu = bool(start_from_relu)
        self.end_with_relu = bool(end_with_relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(x) if self.start_from_relu else x
        out = self.conv2(self.relu(self.conv1(out)))
        if self.end_with_relu:
            out = self.relu(out)
        return x + out


class ResidualBlock(nn.Module):
    """``x + lrelu(conv2(lrelu(conv1(x))))`` with two 3x3 convs (in_ch must equal out_ch)."""

    def __init__(self, in_ch: int, out_ch: int, leaky_relu_slope: float = 0.01) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch)
        self.leaky_relu = nn.LeakyReLU(negative_slope=leaky_relu_slope)
        self.conv2 = conv3x3(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.leaky_relu(self.conv2(self.leaky_relu(self.conv1(x))))
        return out + x


class ResidualBlockWithStride(nn.Module):
    """Strided residual block (encoder side): [N,in,H,W] -> [N,out,H/s,W/s]."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 2) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride=stride)
        self.leaky_relu = nn.LeakyReLU()
        self.conv2 = conv3x3(out_ch, out_ch)
        self.leaky_relu2 = nn.LeakyReLU(negative_slope=0.1)
        self.downsample = conv1x1(in_ch, out_ch, stride=stride) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.leaky_relu2(self.conv2(self.leaky_relu(self.conv1(x))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class ResidualBlockUpsample(nn.Module):
    """Up-sampling residual block with 1x1 sub-pixel convs: [N,in,H,W] -> [N,out,rH,rW]."""

    def __init__(self, in_ch: int, out_ch: int, upsample: int = 2) -> None:
        super().__init__()
        self.subpel_conv = subpel_conv1x1(in_ch, out_ch, upsample)
        self.leaky_relu = nn.LeakyReLU()
        self.conv = conv3x3(out_ch, out_ch)
        self.leaky_relu2 = nn.LeakyReLU(negative_slope=0.1)
        self.upsample = subpel_conv1x1(in_ch, out_ch, upsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.leaky_relu2(self.conv(self.leaky_relu(self.subpel_conv(x))))
        return out + self.upsample(x)


class SpyNetBasic(nn.Module):
    """One SpyNet level: five 7x7 convs, [N, 8, H, W] -> flow residual [N, 2, H, W]."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(8, 32, 7, 1, padding=3)
        self.conv2 = nn.Conv2d(32, 64, 7, 1, padding=3)
        self.conv3 = nn.Conv2d(64, 32, 7, 1, padding=3)
        self.conv4 = nn.Conv2d(32, 16, 7, 1, padding=3)
        self.conv5 = nn.Conv2d(16, 2, 7, 1, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = self.relu(conv(x))
        return self.conv5(x)


class SpyNet(nn.Module):
    """Four-level SpyNet motion estimator (encoder side only).

    ``forward(current, reference)`` returns the flow [N, 2, H, W] that warps ``reference`` onto
    ``current``; H and W must be divisible by 16.
    """

    levels = 4

    def __init__(self) -> None:
        super().__init__()
        self.moduleBasic = nn.ModuleList([SpyNetBasic() for _ in range(self.levels)])

    def forward(self, current: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return self.forward_levels(current, reference)[-1]

    def forward_levels(self, current: torch.Tensor, reference: torch.Tensor) -> list[torch.Tensor]:
        """The flow after every level, coarsest first: [N, 2, H / 2^(levels-1-i), W / 2^(levels-1-i)]
        for level i, in pixels of that level (the last entry is :meth:`forward`'s result)."""
        currents, references = [current], [reference]
        for _ in range(self.levels - 1):
            currents.append(F.avg_pool2d(currents[-1], kernel_size=2, stride=2))
            references.append(F.avg_pool2d(references[-1], kernel_size=2, stride=2))
        coarsest = references[-1]
        flow = current.new_zeros(current.size(0), 2, coarsest.size(2) // 2, coarsest.size(3) // 2)
        flows = []
        for level in range(self.levels):
            flow_up = bilinear_upscale(flow) * 2.0
            index = self.levels - 1 - level
            warped = flow_warp(references[index], flow_up)
            flow = flow_up + self.moduleBasic[level](torch.cat([currents[index], warped, flow_up], 1))
            flows.append(flow)
        return flows


class FlowWarp(nn.Module):
    """Module form of ``flow_warp`` (for tracing and MAC counting): (feature, flow) -> warped."""

    def forward(self, feature: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        return flow_warp(feature, flow)
