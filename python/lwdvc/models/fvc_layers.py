"""Building blocks of FVC (Hu et al., CVPR 2021), named so that state_dict keys match the
official checkpoints (``ZhihaoHu/PyTorchVideoCompression``, FVC).

Channel counts are arguments, so width-scaled variants use the same classes. Shapes in the
docstrings use ``nf`` for the feature-space channels (64 in the official model) and ``ch`` for a
latent's channels (128).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lwdvc_kernels.nn import DeformConv2d

__all__ = [
    "ResidualBlockNoBN",
    "ResBlockStack",
    "FeatureEncoder",
    "FeatureDecoder",
    "LatentEncoder",
    "LatentDecoder",
    "HyperEncoder",
    "HyperDecoder",
    "ParameterNet",
    "DeformableAligner",
]


class ResidualBlockNoBN(nn.Module):
    """``x + conv2(relu(conv1(x)))`` with two same-size ``ks`` x ``ks`` convs.

    Shape: [N, nf, H, W] -> [N, nf, H, W].
    """

    def __init__(self, nf: int, ks: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, ks, 1, ks // 2)
        self.conv2 = nn.Conv2d(nf, nf, ks, 1, ks // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ResBlockStack(nn.Module):
    """Three residual blocks ``res1..res3`` with one more skip around the whole stack.

    Shape: [N, nf, H, W] -> [N, nf, H, W].
    """

    def __init__(self, nf: int, ks: int = 3) -> None:
        super().__init__()
        self.res1 = ResidualBlockNoBN(nf, ks)
        self.res2 = ResidualBlockNoBN(nf, ks)
        self.res3 = ResidualBlockNoBN(nf, ks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res3(self.res2(self.res1(x)))


class FeatureEncoder(nn.Module):
    """Frame to feature space: 5x5 stride-2 conv, then a residual stack.

    Shape: [N, 3, H, W] -> [N, nf, H/2, W/2].
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, nf, 5, 2, 2)
        self.feature_extraction = ResBlockStack(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_extraction(self.conv1(x))


class FeatureDecoder(nn.Module):
    """Feature space to frame: residual stack, then a 5x5 stride-2 transposed conv.

    Shape: [N, nf, H/2, W/2] -> [N, 3, H, W] (not clamped).
    """

    def __init__(self, nf: int) -> None:
        super().__init__()
        self.recon_trunk = ResBlockStack(nf)
        self.deconv1 = nn.ConvTranspose2d(nf, 3, 5, stride=2, padding=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv1(self.recon_trunk(x))


class LatentEncoder(nn.Module):
    """Three 5x5 stride-2 convs with residual stacks after the first two (offset/residual encoder).

    Shape: [N, c_in, H, W] -> [N, ch, H/8, W/8].
    """

    def __init__(self, c_in: int, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, ch, 5, stride=2, padding=2)
        self.res1 = ResBlockStack(ch)
        self.conv2 = nn.Conv2d(ch, ch, 5, stride=2, padding=2)
        self.res2 = ResBlockStack(ch)
        self.conv3 = nn.Conv2d(ch, ch, 5, stride=2, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(self.conv1(x))
        x = self.res2(self.conv2(x))
        return self.conv3(x)


class LatentDecoder(nn.Module):
    """Mirror of :class:`LatentEncoder` with 5x5 stride-2 transposed convs.

    Shape: [N, ch, h, w] -> [N, c_out, 8h, 8w].
    """

    def __init__(self, ch: int, c_out: int) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(ch, ch, 5, stride=2, padding=2, output_padding=1)
        self.res1 = ResBlockStack(ch)
        self.deconv2 = nn.ConvTranspose2d(ch, ch, 5, stride=2, padding=2, output_padding=1)
        self.res2 = ResBlockStack(ch)
        self.deconv3 = nn.ConvTranspose2d(ch, c_out, 5, stride=2, padding=2, output_padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res1(self.deconv1(x))
        x = self.res2(self.deconv2(x))
        return self.deconv3(x)


class HyperEncoder(nn.Module):
    """Hyper-prior analysis: 3x3 conv, two 5x5 stride-2 convs, LeakyReLU(0.2) between.

    Shape: [N, ch, h, w] -> [N, ch, h/4, w/4].
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 5, stride=2, padding=2)
        self.conv3 = nn.Conv2d(ch, ch, 5, stride=2, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.leaky_relu(self.conv2(x), 0.2)
        return self.conv3(x)


class HyperDecoder(nn.Module):
    """Hyper-prior synthesis: two 5x5 stride-2 transposed convs and a 3x3 one.

    Shape: [N, ch, h, w] -> [N, 2*ch, 4h, 4w] (channels ch -> ch -> 3ch/2 -> 2ch).
    """

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.deconv1 = nn.ConvTranspose2d(ch, ch, 5, stride=2, padding=2, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(ch, ch * 3 // 2, 5, stride=2, padding=2, output_padding=1)
        self.deconv3 = nn.ConvTranspose2d(ch * 3 // 2, ch * 2, 3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.deconv1(x), 0.2)
        x = F.leaky_relu(self.deconv2(x), 0.2)
        return self.deconv3(x)


class ParameterNet(nn.Module):
    """1x1-conv network from the decoded hyper-prior to the Gaussian's raw (mu, sigma) maps.

    Shape: [N, c_in, h, w] -> [N, c_out, h, w] with ``c_out = 2 * latent channels``.
    """

    def __init__(self, c_in: int, hidden: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, hidden, 1)
        self.conv2 = nn.Conv2d(hidden, hidden, 1)
        self.res0 = ResBlockStack(hidden, 1)
        self.conv3 = nn.Conv2d(hidden, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), 0.1)
        x = F.leaky_relu(self.conv2(x), 0.1)
        return self.conv3(self.res0(x))


class DeformableAligner(nn.Module):
    """Feature-space motion: offset estimation/coding and deformable compensation.

    Encoder side (``motion_estimation``): ``offset_conv1``, ``offset_conv3``, ``offset_encoder``.
    Decoder side (``motion_compensation``): ``offset_decoder``, ``deformable_convolution``
    (DCNv1, 3x3, ``groups`` deformable groups, offsets predicted from the decoded offset
    feature), ``refine_conv1``, ``refine_conv2``.

    Args:
        nf: feature channels.
        ch: offset latent channels.
        groups: deformable groups.
    """

    def __init__(self, nf: int, ch: int, groups: int = 8) -> None:
        super().__init__()
        self.offset_conv1 = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.offset_conv3 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.offset_encoder = LatentEncoder(nf, ch)
        self.offset_decoder = LatentDecoder(ch, nf)
        self.deformable_convolution = DeformConv2d(nf, nf, 3, stride=1, padding=1, deformable_groups=groups)
        self.refine_conv1 = nn.Conv2d(nf * 2, nf, 3, 1, 1)
        self.refine_conv2 = nn.Conv2d(nf, nf, 3, 1, 1)

    def motion_estimation(self, ref_feature: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        """Offset latent from two feature maps [N, nf, H, W] -> [N, ch, H/8, W/8]."""
        x = torch.cat([ref_feature, feature], dim=1)
        x = F.leaky_relu(self.offset_conv1(x), 0.1)
        x = F.leaky_relu(self.offset_conv3(x), 0.1)
        return self.offset_encoder(x)

    def forward(self, ref_feature: torch.Tensor, q_offset: torch.Tensor) -> torch.Tensor:
        """The decoder side: aligned feature [N, nf, H, W] from the reference feature
        [N, nf, H, W] and the quantised offset latent [N, ch, H/8, W/8].

        ``warped = deformable_convolution(ref, offset_decoder(q_offset))``, then
        ``warped + lrelu(refine_conv2(lrelu(refine_conv1(cat(warped, ref)))))``. One module, so
        the channels between its layers (offset feature, refinement) are internal to it.
        """
        warped = self.deformable_convolution(ref_feature, self.offset_decoder(q_offset))
        x = F.leaky_relu(self.refine_conv1(torch.cat([warped, ref_feature], dim=1)), 0.1)
        return warped + F.leaky_relu(self.refine_conv2(x), 0.1)

    def motion_compensation(self, ref_feature: torch.Tensor, q_offset: torch.Tensor) -> torch.Tensor:
        """Same as calling the module (see :meth:`forward`)."""
        return self(ref_feature, q_offset)
