"""Small versions of public learnt-compression and restoration decoders, written from their
published descriptions (layer types, order and shapes; widths reduced so tests stay fast).

Each entry of :data:`DECODERS` is ``name -> (constructor, example input shape)``. None of their
layers is registered with the engine beyond the stock PyTorch modules.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from tests.compact.reparametrized_layers import GDN, HyperpriorSynthesis


class ResidualUnit(nn.Module):
    """1x1 (half width) -> 3x3 -> 1x1 with a skip, as in the attention-based image codec."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c // 2, 1), nn.ReLU(), nn.Conv2d(c // 2, c // 2, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(c // 2, c, 1))

    def forward(self, x):
        return F.relu(x + self.body(x))


class SimplifiedAttention(nn.Module):
    """Trunk of residual units times the sigmoid of a mask branch ending in a 1x1 conv, plus a skip."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(ResidualUnit(c), ResidualUnit(c))
        self.mask = nn.Sequential(ResidualUnit(c), nn.Conv2d(c, c, 1))

    def forward(self, x):
        return x + self.trunk(x) * torch.sigmoid(self.mask(x))


class AttentionSynthesis(nn.Module):
    """Attention-based image codec synthesis: attention, residual blocks, sub-pixel up-sampling
    (conv to 4C + PixelShuffle) with IGDN. [N, C, H, W] -> [N, 3, 4H, 4W]."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            SimplifiedAttention(c), ResidualUnit(c),
            nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), GDN(c, inverse=True),
            ResidualUnit(c), nn.Conv2d(c, 12, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, y):
        return self.layers(y)


class NonLocalAttention(nn.Module):
    """Spatial self-attention over positions: q, k, v from 1x1 convs, ``softmax(q^T k * scale)``
    over positions, the attended values back through a 1x1 conv, with a skip. ``scale`` is fixed
    at construction (``inner ** -0.5``); ``runtime_scale`` reads it from the channel count in
    forward instead, which pruning changes (the verification catches that)."""

    def __init__(self, c: int, inner: int, runtime_scale: bool = False) -> None:
        super().__init__()
        self.q, self.k, self.v = nn.Conv2d(c, inner, 1), nn.Conv2d(c, inner, 1), nn.Conv2d(c, inner, 1)
        self.out = nn.Conv2d(inner, c, 1)
        self.scale, self.runtime_scale = inner ** -0.5, runtime_scale

    def forward(self, x):
        n, _, h, w = x.shape
        q, k, v = (conv(x).flatten(2) for conv in (self.q, self.k, self.v))  # [N, inner, HW]
        scale = q.shape[1] ** -0.5 if self.runtime_scale else self.scale
        attention = torch.softmax(torch.bmm(q.transpose(1, 2), k) * scale, dim=-1)  # [N, HW, HW]
        attended = torch.einsum("ncj,nij->nci", v, attention)  # [N, inner, HW]
        return x + self.out(attended.reshape(n, -1, h, w))


class MultiHeadAttention(nn.Module):
    """Multi-head spatial self-attention: the 1x1-conv projections reshaped to
    [N, heads, C / heads, HW], scaled dot products per head (``matmul``), softmax over positions,
    the heads merged back to [N, C, H, W], an output 1x1 conv and a skip."""

    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (c // heads) ** -0.5
        self.qkv = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(3))
        self.out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        n, _, h, w = x.shape
        q, k, v = (conv(x).reshape(n, self.heads, -1, h * w) for conv in self.qkv)
        attention = torch.softmax(torch.matmul(q.transpose(-2, -1), k) * self.scale, dim=-1)  # [N, heads, HW, HW]
        merged = torch.matmul(v, attention.transpose(-2, -1)).reshape(n, -1, h, w)
        return x + self.out(merged)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention: global pooling, 1x1 down, ReLU, 1x1 up, sigmoid."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // r, 1), nn.ReLU(),
                                     nn.Conv2d(c // r, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.squeeze(x)


class LinearChannelAttention(nn.Module):
    """Channel attention with linear layers on the pooled vector: mean over positions [N, C],
    Linear down, GELU, Linear up, sigmoid, reshaped to [N, C, 1, 1] and multiplied."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.down, self.up = nn.Linear(c, c // r), nn.Linear(c // r, c)

    def forward(self, x):
        weights = torch.sigmoid(self.up(F.gelu(self.down(x.mean((2, 3))))))
        return x * weights.view(x.shape[0], -1, 1, 1)


class ResidualChannelAttentionDecoder(nn.Module):
    """Residual channel-attention blocks (conv, ReLU, conv, channel attention with 1x1 convs or
    with linear layers, skip) with a pixel-shuffle up-sampler. [N, 3, H, W] -> [N, 3, 2H, 2W]."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, c, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                                  nn.Conv2d(c, c, 3, padding=1), attention(c))
                                    for attention in (ChannelAttention, LinearChannelAttention))
        self.up = nn.Sequential(nn.Conv2d(c, 4 * c, 3, padding=1), nn.PixelShuffle(2), nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, x):
        h = self.head(x)
        for block in self.blocks:
            h = h + block(h)
        return self.up(h)


class GroupNormResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class LatentImageDecoder(nn.Module):
    """The decoder of a latent image autoencoder: GroupNorm + SiLU residual blocks, one
    single-head self-attention in the middle, nearest up-sampling with ``F.interpolate``.
    [N, 4, H, W] -> [N, 3, 2H, 2W]."""

    def __init__(self, c: int = 16, groups: int = 4) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(4, 2 * c, 3, padding=1)
        self.mid = GroupNormResBlock(2 * c, 2 * c, groups)
        self.attention_norm = nn.GroupNorm(groups, 2 * c)
        self.attention = NonLocalAttention(2 * c, 2 * c)
        self.up_block = GroupNormResBlock(2 * c, c, groups)
        self.up_conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm_out, self.conv_out = nn.GroupNorm(groups, c), nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.conv_in(z))
        h = self.attention(self.attention_norm(h))
        h = self.up_block(h)
        h = self.up_conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class DepthwiseSeparableBlock(nn.Module):
    """The blocks of the fast learnt video codecs' decoders: 1x1 conv, LeakyReLU, depthwise 3x3,
    1x1 conv with a skip, then a gated feed-forward: 1x1 conv to 4C, chunk in two, one half
    gating (``a * relu(b)``) or added to (``a + relu(b)``) the other, 1x1 back, skip."""

    def __init__(self, c: int, gate: bool) -> None:
        super().__init__()
        self.depth = nn.Sequential(nn.Conv2d(c, c, 1), nn.LeakyReLU(0.01), nn.Conv2d(c, c, 3, padding=1, groups=c),
                                   nn.Conv2d(c, c, 1))
        self.ffn_in, self.ffn_out = nn.Conv2d(c, 4 * c, 1), nn.Conv2d(2 * c, c, 1)
        self.gate = gate

    def forward(self, x):
        x = x + self.depth(x)
        a, b = self.ffn_in(x).chunk(2, 1)
        mixed = a * F.relu(b) if self.gate else a + F.relu(b)
        return x + self.ffn_out(mixed)


class DepthwiseSeparableDecoder(nn.Module):
    """[N, C, H, W] -> [N, 3, 2H, 2W] through two depthwise-separable blocks and a sub-pixel conv."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.blocks = nn.Sequential(DepthwiseSeparableBlock(c, gate=True), DepthwiseSeparableBlock(c, gate=False))
        self.up = nn.Sequential(nn.Conv2d(c, 12, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, y):
        return self.up(self.blocks(y))


class BatchNormMishDecoder(nn.Module):
    """Transposed-conv decoder with BatchNorm and Mish, a grouped 3x3 conv and a space-to-depth
    (PixelUnshuffle) skip from the input. [N, 8, H, W] -> [N, 3, 2H, 2W]."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(8, c, 4, 2, 1)
        self.bn1 = nn.BatchNorm2d(c)
        self.grouped = nn.Conv2d(c, c, 3, padding=1, groups=4)
        self.bn2 = nn.BatchNorm2d(c)
        self.skip = nn.Conv2d(8 * 4, c, 1)
        self.out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, y):
        h = F.mish(self.bn1(self.up(y)))
        h = F.mish(self.bn2(self.grouped(h)))
        skip = self.skip(F.pixel_unshuffle(F.interpolate(y, scale_factor=4.0, mode="bilinear"), 2))
        return self.out(h + skip)


class WeightNormUpsampler(nn.Module):
    """Weight-normalised residual up-sampler in the style of fast super-resolution networks:
    wide activation (conv to 4C, ReLU, conv back), weight norm on every conv, sub-pixel output.
    [N, 3, H, W] -> [N, 3, 2H, 2W]."""

    def __init__(self, c: int = 12) -> None:
        super().__init__()
        self.head = weight_norm(nn.Conv2d(3, c, 3, padding=1))
        self.body = nn.ModuleList(nn.Sequential(weight_norm(nn.Conv2d(c, 4 * c, 3, padding=1)), nn.ReLU(),
                                                weight_norm(nn.Conv2d(4 * c, c, 3, padding=1))) for _ in range(2))
        self.tail = nn.Sequential(weight_norm(nn.Conv2d(c, 12, 3, padding=1)), nn.PixelShuffle(2))

    def forward(self, x):
        h = self.head(x)
        for block in self.body:
            h = h + block(h)
        return self.tail(h)


#: name -> (constructor, example input shape [N, C, H, W])
DECODERS = {
    "hyperprior_synthesis_igdn": (lambda: HyperpriorSynthesis(n=12, m=16), (1, 16, 3, 4)),
    "attention_synthesis": (AttentionSynthesis, (1, 16, 4, 5)),
    "residual_channel_attention": (ResidualChannelAttentionDecoder, (1, 3, 6, 7)),
    "latent_image_decoder": (LatentImageDecoder, (1, 4, 5, 6)),
    "depthwise_separable_video_decoder": (DepthwiseSeparableDecoder, (1, 16, 6, 5)),
    "batchnorm_mish_decoder": (BatchNormMishDecoder, (1, 8, 4, 6)),
    "weight_norm_upsampler": (WeightNormUpsampler, (1, 3, 6, 5)),
    "multihead_attention_block": (lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), MultiHeadAttention(16, 2),
                                                        nn.Conv2d(16, 3, 3, padding=1)), (1, 3, 5, 6)),
    "nonlocal_attention_block": (lambda: nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), NonLocalAttention(16, 8),
                                                       nn.Conv2d(16, 3, 3, padding=1)), (1, 3, 5, 6)),
}
