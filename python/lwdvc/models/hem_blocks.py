"""Networks of DCVC-HEM (Li, Li, Lu, ACM MM 2022) shared by the P-frame and the intra model.

Module and parameter names follow the official implementation (state_dict compatible).
"""
from __future__ import annotations

import torch
from torch import nn

from lwdvc.models.layers import (
    ResBlock,
    ResidualBlock,
    ResidualBlockUpsample,
    ResidualBlockWithStride,
    conv3x3,
    subpel_conv1x1,
    subpel_conv3x3,
)

__all__ = ["SELayer", "ConvBlockResidual", "UNet", "FeatureExtractor", "MultiScaleContextFusion",
           "ContextualEncoder", "ContextualDecoder", "ReconGeneration", "enc_dec_models",
           "hyper_enc_dec_models", "hyper_decoder", "three_conv_net"]


class SELayer(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc(mean_hw(x)))`` with a bias-free 2-layer MLP."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=False), nn.ReLU(),
                                nn.Linear(hidden, channels, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.fc(torch.mean(x, dim=(-1, -2)))
        return x * weights[:, :, None, None]


class ConvBlockResidual(nn.Module):
    """``up_dim(x) + SE(conv(lrelu(conv(x))))``: [N, ch_in, H, W] -> [N, ch_out, H, W]."""

    def __init__(self, ch_in: int, ch_out: int, se_layer: bool = True) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, 3, stride=1, padding=1), nn.LeakyReLU(0.01),
            nn.Conv2d(ch_out, ch_out, 3, stride=1, padding=1),
            SELayer(ch_out) if se_layer else nn.Identity())
        self.up_dim = nn.Conv2d(ch_in, ch_out, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up_dim(x) + self.conv(x)


class UNet(nn.Module):
    """Two-level U-Net with SE residual blocks: [N, in_ch, H, W] -> [N, out_ch, H, W] (H, W % 4 == 0).

    Args:
        in_ch, out_ch: input/output channels.
        base: channels of the first level (32 officially); levels use base, 2*base, 4*base.
    """

    def __init__(self, in_ch: int = 64, out_ch: int = 64, base: int = 32) -> None:
        super().__init__()
        c1, c2, c3 = base, 2 * base, 4 * base
        self.max_pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.conv1 = ConvBlockResidual(ch_in=in_ch, ch_out=c1)
        self.conv2 = ConvBlockResidual(ch_in=c1, ch_out=c2)
        self.conv3 = ConvBlockResidual(ch_in=c2, ch_out=c3)
        self.context_refine = nn.Sequential(*[ResBlock(c3, 0) for _ in range(4)])
        self.up3 = subpel_conv1x1(c3, c2, 2)
        self.up_conv3 = ConvBlockResidual(ch_in=2 * c2, ch_out=c2)
        self.up2 = subpel_conv1x1(c2, c1, 2)
        self.up_conv2 = ConvBlockResidual(ch_in=2 * c1, ch_out=out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv1(x)
        x2 = self.conv2(self.max_pool(x1))
        x3 = self.context_refine(self.conv3(self.max_pool(x2)))
        d3 = self.up_conv3(torch.cat((x2, self.up3(x3)), dim=1))
        return self.up_conv2(torch.cat((x1, self.up2(d3)), dim=1))


class FeatureExtractor(nn.Module):
    """Three-scale reference features: [N,C,H,W] -> ([N,C,H,W], [N,C,H/2,W/2], [N,C,H/4,W/4])."""

    def __init__(self, channel: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channel, channel, 3, stride=1, padding=1)
        self.res_block1 = ResBlock(channel)
        self.conv2 = nn.Conv2d(channel, channel, 3, stride=2, padding=1)
        self.res_block2 = ResBlock(channel)
        self.conv3 = nn.Conv2d(channel, channel, 3, stride=2, padding=1)
        self.res_block3 = ResBlock(channel)

    def forward(self, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layer1 = self.res_block1(self.conv1(feature))
        layer2 = self.res_block2(self.conv2(layer1))
        layer3 = self.res_block3(self.conv3(layer2))
        return layer1, layer2, layer3


class MultiScaleContextFusion(nn.Module):
    """Fuses the three warped contexts top-down; returns refined (context1, context2, context3)."""

    def __init__(self, channel_in: int = 64, channel_out: int = 64) -> None:
        super().__init__()
        self.conv3_up = subpel_conv3x3(channel_in, channel_out, 2)
        self.res_block3_up = ResBlock(channel_out)
        self.conv3_out = nn.Conv2d(channel_out, channel_out, 3, padding=1)
        self.res_block3_out = ResBlock(channel_out)
        self.conv2_up = subpel_conv3x3(channel_out * 2, channel_out, 2)
        self.res_block2_up = ResBlock(channel_out)
        self.conv2_out = nn.Conv2d(channel_out * 2, channel_out, 3, padding=1)
        self.res_block2_out = ResBlock(channel_out)
        self.conv1_out = nn.Conv2d(channel_out * 2, channel_out, 3, padding=1)
        self.res_block1_out = ResBlock(channel_out)

    def forward(self, context1: torch.Tensor, context2: torch.Tensor, context3: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        context3_up = self.res_block3_up(self.conv3_up(context3))
        context3_out = self.res_block3_out(self.conv3_out(context3))
        merged2 = torch.cat((context3_up, context2), dim=1)
        context2_up = self.res_block2_up(self.conv2_up(merged2))
        context2_out = self.res_block2_out(self.conv2_out(merged2))
        context1_out = self.res_block1_out(self.conv1_out(torch.cat((context2_up, context1), dim=1)))
        return context1 + context1_out, context2 + context2_out, context3 + context3_out


def _bottleneck(channels: int) -> ResBlock:
    return ResBlock(channels, bottleneck=True, slope=0.1, start_from_relu=True, end_with_relu=True)


class ContextualEncoder(nn.Module):
    """Encoder side: frame [N,3,H,W] + contexts -> latent y [N, M, H/16, W/16]."""

    def __init__(self, channel_N: int = 64, channel_M: int = 96) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channel_N + 3, channel_N, 3, stride=2, padding=1)
        self.res1 = _bottleneck(channel_N * 2)
        self.conv2 = nn.Conv2d(channel_N * 2, channel_N, 3, stride=2, padding=1)
        self.res2 = _bottleneck(channel_N * 2)
        self.conv3 = nn.Conv2d(channel_N * 2, channel_N, 3, stride=2, padding=1)
        self.conv4 = nn.Conv2d(channel_N, channel_M, 3, stride=2, padding=1)

    def forward(self, x, context1, context2, context3):
        feature = self.conv1(torch.cat([x, context1], dim=1))
        feature = self.conv2(self.res1(torch.cat([feature, context2], dim=1)))
        feature = self.conv3(self.res2(torch.cat([feature, context3], dim=1)))
        return self.conv4(feature)


class ContextualDecoder(nn.Module):
    """y_hat [N,M,H/16,W/16] + context2/3 -> residual feature [N, res_channel, H, W]."""

    def __init__(self, channel_N: int = 64, channel_M: int = 96, res_channel: int = 32) -> None:
        super().__init__()
        self.up1 = subpel_conv3x3(channel_M, channel_N, 2)
        self.up2 = subpel_conv3x3(channel_N, channel_N, 2)
        self.res1 = _bottleneck(channel_N * 2)
        self.up3 = subpel_conv3x3(channel_N * 2, channel_N, 2)
        self.res2 = _bottleneck(channel_N * 2)
        self.up4 = subpel_conv3x3(channel_N * 2, res_channel, 2)

    def forward(self, x: torch.Tensor, context2: torch.Tensor, context3: torch.Tensor) -> torch.Tensor:
        feature = self.up2(self.up1(x))
        feature = self.up3(self.res1(torch.cat([feature, context3], dim=1)))
        feature = self.res2(torch.cat([feature, context2], dim=1))
        return self.up4(feature)


class ReconGeneration(nn.Module):
    """(ctx, res) -> (feature [N,channel,H,W] for the dpb, recon [N,3,H,W]).

    ``first_conv`` sees ``cat(ctx, res)``. Note: the official P-frame decoder calls it with
    (residual feature, context1), i.e. the residual feature comes first in the concat.
    """

    def __init__(self, ctx_channel: int = 64, res_channel: int = 32, channel: int = 64,
                 unet_base: int = 32) -> None:
        super().__init__()
        self.first_conv = nn.Conv2d(ctx_channel + res_channel, channel, 3, stride=1, padding=1)
        self.unet_1 = UNet(channel, channel, unet_base)
        self.unet_2 = UNet(channel, channel, unet_base)
        self.recon_conv = nn.Conv2d(channel, 3, 3, stride=1, padding=1)

    def forward(self, ctx: torch.Tensor, res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.unet_2(self.unet_1(self.first_conv(torch.cat((ctx, res), dim=1))))
        return feature, self.recon_conv(feature)


def enc_dec_models(input_channel: int, output_channel: int, channel: int
                   ) -> tuple[nn.Sequential, nn.Sequential]:
    """Analysis/synthesis transforms (stride 16) of the motion and intra codecs."""
    enc = nn.Sequential(
        ResidualBlockWithStride(input_channel, channel, stride=2), ResidualBlock(channel, channel),
        ResidualBlockWithStride(channel, channel, stride=2), ResidualBlock(channel, channel),
        ResidualBlockWithStride(channel, channel, stride=2), ResidualBlock(channel, channel),
        conv3x3(channel, channel, stride=2))
    dec = nn.Sequential(
        ResidualBlock(channel, channel), ResidualBlockUpsample(channel, channel, 2),
        ResidualBlock(channel, channel), ResidualBlockUpsample(channel, channel, 2),
        ResidualBlock(channel, channel), ResidualBlockUpsample(channel, channel, 2),
        ResidualBlock(channel, channel), subpel_conv1x1(channel, output_channel, 2))
    return enc, dec


def hyper_enc_dec_models(y_channel: int, z_channel: int) -> tuple[nn.Sequential, nn.Sequential]:
    """Hyper analysis (stride 4) and hyper synthesis (y_channel*2 outputs) transforms."""
    enc = nn.Sequential(
        conv3x3(y_channel, z_channel), nn.LeakyReLU(), conv3x3(z_channel, z_channel), nn.LeakyReLU(),
        conv3x3(z_channel, z_channel, stride=2), nn.LeakyReLU(), conv3x3(z_channel, z_channel),
        nn.LeakyReLU(), conv3x3(z_channel, z_channel, stride=2))
    dec = hyper_decoder(z_channel, y_channel)
    return enc, dec


def hyper_decoder(z_channel: int, y_channel: int) -> nn.Sequential:
    """conv3x3 / subpel 1x1 (x2) / conv3x3 / subpel 1x1 (x2) / conv3x3 -> y_channel*2 outputs."""
    mid = y_channel * 3 // 2
    return nn.Sequential(
        conv3x3(z_channel, y_channel), nn.LeakyReLU(), subpel_conv1x1(y_channel, y_channel, 2),
        nn.LeakyReLU(), conv3x3(y_channel, mid), nn.LeakyReLU(), subpel_conv1x1(mid, mid, 2),
        nn.LeakyReLU(), conv3x3(mid, y_channel * 2))


def three_conv_net(c0: int, c1: int, c2: int, c3: int) -> nn.Sequential:
    """Three 3x3 convs c0 -> c1 -> c2 -> c3 with LeakyReLU(0.2) between (prior fusion and
    spatial prior networks)."""
    return nn.Sequential(nn.Conv2d(c0, c1, 3, stride=1, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(c1, c2, 3, stride=1, padding=1), nn.LeakyReLU(0.2),
                         nn.Conv2d(c2, c3, 3, stride=1, padding=1))
