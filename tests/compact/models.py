"""Hand-made decoder-like models that combine the structures the channel analysis must handle."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import GDN, IGDN, MaskedConv2d
from lwdvc_kernels.nn.deform_conv import DeformConv2d


def flow_warp(feature: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp of ``feature`` [N, C, H, W] by ``flow`` [N, 2, H, W] (pixels)."""
    n, _, h, w = feature.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=feature.dtype), torch.arange(w, dtype=feature.dtype), indexing="ij")
    base = torch.stack((xs, ys), dim=-1).unsqueeze(0)
    grid = base + flow.permute(0, 2, 3, 1)
    gx = 2.0 * grid[..., 0] / max(w - 1, 1) - 1.0
    gy = 2.0 * grid[..., 1] / max(h - 1, 1) - 1.0
    return F.grid_sample(feature, torch.stack((gx, gy), dim=-1), align_corners=True)


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.1))


class SEBlock(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(c, c // r)
        self.fc2 = nn.Linear(c // r, c)

    def forward(self, x):
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * w.view(x.shape[0], -1, 1, 1)


class SubpelConv(nn.Module):
    def __init__(self, cin: int, cout: int, r: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * r * r, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)

    def forward(self, x):
        return self.shuffle(self.conv(x))


class HybridDecoder(nn.Module):
    """Residual stream + SE + GDN + subpel + transposed conv + concat + split + depthwise."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.head = nn.Conv2d(8, c, 3, padding=1)
        self.igdn = IGDN(c)
        self.blocks = nn.Sequential(ResBlock(c), ResBlock(c))
        self.se = SEBlock(c)
        self.up1 = nn.ConvTranspose2d(c, c, 4, stride=2, padding=1)
        self.gdn = GDN(c)
        self.branch = nn.Conv2d(c, c // 2, 3, padding=1)
        self.dw = nn.Conv2d(c + c // 2, c + c // 2, 3, padding=1, groups=c + c // 2)
        self.bn = nn.BatchNorm2d(c + c // 2)
        self.grouped = nn.Conv2d(c + c // 2, c, 3, padding=1, groups=2)
        self.up2 = SubpelConv(c // 2, c // 2)
        self.tail = nn.Conv2d(c // 2 + c // 2, 3, 3, padding=1)

    def forward(self, y):
        x = self.igdn(self.head(y))
        x = self.se(self.blocks(x))
        x = self.gdn(self.up1(x))
        x = torch.cat([x, F.relu(self.branch(x))], dim=1)
        x = F.relu(self.bn(self.dw(x)))
        a, b = torch.chunk(self.grouped(x), 2, dim=1)
        a = self.up2(F.relu(a))
        b = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.tail(torch.cat([a, b], dim=1))


class WarpDecoder(nn.Module):
    """Motion decoder (transposed convs) -> flow -> warp features -> deform align -> context mix."""

    def __init__(self, c: int = 12) -> None:
        super().__init__()
        self.mv1 = nn.ConvTranspose2d(4, c, 3, stride=2, padding=1, output_padding=1)
        self.mv2 = nn.Conv2d(c, 2, 3, padding=1)
        self.feat = nn.Conv2d(3, c, 3, padding=1)
        self.feat_res = ResBlock(c)
        self.align = DeformConv2d(c, c, 3, padding=1, deformable_groups=2, offset_in_channels=c)
        self.ctx = nn.Conv2d(c, c, 3, padding=1)
        self.ar = MaskedConv2d(c, c, 5, padding=2, mask_type="B")
        self.mix = nn.Conv2d(2 * c + 3, c, 3, padding=1)
        self.out = nn.Conv2d(c, 3, 1)

    def forward(self, motion, ref_frame):
        m = F.relu(self.mv1(motion))
        flow = self.mv2(m)
        f = self.feat_res(F.relu(self.feat(ref_frame)))
        warped = flow_warp(f, flow)
        aligned = self.align(warped, m)
        ctx = self.ar(F.relu(self.ctx(aligned + warped)))
        x = torch.cat([ctx, warped, ref_frame], dim=1)
        return self.out(F.relu(self.mix(x)))


def hybrid_inputs(h: int = 8, w: int = 8) -> tuple[torch.Tensor]:
    return (torch.randn(1, 8, h, w),)


def warp_inputs(h: int = 8, w: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(1, 4, h // 2, w // 2), torch.rand(1, 3, h, w)


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial parameters and statistics (offset convs and biases included)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan = max(1, p[0].numel()) if p.dim() > 1 else 10
            p.copy_(torch.randn(p.shape, generator=gen) / fan**0.5)
            if name.endswith("beta"):
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            if name.endswith("gamma"):
                p.copy_(0.1 * torch.rand(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=gen) * 0.1)
            if name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
    return model.eval()
