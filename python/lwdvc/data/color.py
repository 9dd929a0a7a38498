"""YCbCr <-> RGB conversion for 8-bit YUV 4:2:0 test sequences.

Convention (the default, ``matrix="bt709"``, ``full_range=True``): the one the official DCVC
test scripts use when they read raw ``.yuv`` files directly (DCVC-DC / DCVC-FM,
``src/transforms/functional.py`` and ``src/utils/video_reader.py`` of microsoft/DCVC):

* 8-bit samples are divided by 255 (full range: no 16..235 head-room is removed),
* ITU-R BT.709 luma weights ``Kr = 0.2126``, ``Kb = 0.0722``,
  ``R = Y + 2(1 - Kr)(Cr - 0.5)``, ``B = Y + 2(1 - Kb)(Cb - 0.5)``,
  ``G = (Y - Kr R - Kb B) / Kg``, the result clipped to [0, 1],
* 4:2:0 chroma is upsampled by 2 with bilinear interpolation whose corner samples are aligned
  (``scipy.ndimage.zoom(order=1)`` there; ``F.interpolate(align_corners=True)`` here, which is
  the same mapping), and RGB -> 4:2:0 averages each 2x2 chroma block.

The older DCVC / DCVC-HEM test pipelines first turned the ``.yuv`` files into PNGs with ffmpeg,
whose default for untagged yuv420p input is BT.601 *limited* range; ``matrix="bt601"`` with
``full_range=False`` gives those coefficients (ffmpeg's chroma filter is not reproduced exactly).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Luma weights (Kr, Kb) of the supported matrices.
LUMA_WEIGHTS = {
    "bt709": (0.2126, 0.0722),
    "bt601": (0.299, 0.114),
}


def _weights(matrix: str) -> tuple[float, float, float]:
    if matrix not in LUMA_WEIGHTS:
        raise ValueError(f"unknown colour matrix {matrix!r}; expected one of {sorted(LUMA_WEIGHTS)}")
    kr, kb = LUMA_WEIGHTS[matrix]
    return kr, 1.0 - kr - kb, kb


def check_float_frames(name: str, t: torch.Tensor, channels: int | None = None) -> None:
    """Raise TypeError / ValueError unless ``t`` is a float tensor [C, H, W] or [N, C, H, W]."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if t.dim() not in (3, 4):
        raise ValueError(f"{name} must have shape [C, H, W] or [N, C, H, W], got {tuple(t.shape)}")
    if channels is not None and t.shape[-3] != channels:
        raise ValueError(f"{name} must have {channels} channel(s) in dim -3, got shape {tuple(t.shape)}")


def rgb_to_luma(rgb: torch.Tensor, matrix: str = "bt709") -> torch.Tensor:
    """Luma Y of RGB frames.

    Args:
        rgb: [..., 3, H, W] float RGB in [0, 1].
        matrix: ``"bt709"`` (default) or ``"bt601"``.

    Returns:
        [..., 1, H, W] full-range luma in [0, 1].
    """
    check_float_frames("rgb", rgb, 3)
    kr, kg, kb = _weights(matrix)
    r, g, b = rgb.unbind(-3)
    return (kr * r + kg * g + kb * b).unsqueeze(-3)


def ycbcr_to_rgb(ycbcr: torch.Tensor, matrix: str = "bt709", full_range: bool = True) -> torch.Tensor:
    """YCbCr 4:4:4 to RGB.

    Args:
        ycbcr: [..., 3, H, W] float, samples / 255 (Y, Cb, Cr order).
        matrix: ``"bt709"`` or ``"bt601"``.
        full_range: False maps limited-range samples (Y 16..235, C 16..240) first.

    Returns:
        [..., 3, H, W] RGB clipped to [0, 1].
    """
    check_float_frames("ycbcr", ycbcr, 3)
    kr, kg, kb = _weights(matrix)
    y, cb, cr = ycbcr.unbind(-3)
    if not full_range:
        y = (y * 255.0 - 16.0) / 219.0
        cb = (cb * 255.0 - 128.0) / 224.0 + 0.5
        cr = (cr * 255.0 - 128.0) / 224.0 + 0.5
    r = y + (2.0 - 2.0 * kr) * (cr - 0.5)
    b = y + (2.0 - 2.0 * kb) * (cb - 0.5)
    g = (y - kr * r - kb * b) / kg
    return torch.stack((r, g, b), dim=-3).clamp_(0.0, 1.0)


def rgb_to_ycbcr(rgb: torch.Tensor, matrix: str = "bt709") -> torch.Tensor:
    """RGB to full-range YCbCr 4:4:4 (the inverse of :func:`ycbcr_to_rgb` before clipping).

    Args:
        rgb: [..., 3, H, W] float RGB in [0, 1].
        matrix: ``"bt709"`` or ``"bt601"``.

    Returns:
        [..., 3, H, W] (Y, Cb, Cr) clipped to [0, 1].
    """
    kr, _, kb = _weights(matrix)
    y = rgb_to_luma(rgb, matrix).squeeze(-3)
    r, _, b = rgb.unbind(-3)
    cb = 0.5 * (b - y) / (1.0 - kb) + 0.5
    cr = 0.5 * (r - y) / (1.0 - kr) + 0.5
    return torch.stack((y, cb, cr), dim=-3).clamp_(0.0, 1.0)


def upsample_chroma(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Upsample 4:2:0 chroma planes to the luma size (bilinear, corners aligned).

    Args:
        uv: [2, H/2, W/2] or [N, 2, H/2, W/2] float chroma.
        height, width: luma size (even).

    Returns:
        [2, H, W] or [N, 2, H, W].
    """
    check_float_frames("uv", uv, 2)
    batched = uv.unsqueeze(0) if uv.dim() == 3 else uv
    if batched.shape[-2:] == (height, width):
        out = batched
    elif batched.shape[-2] == 1 or batched.shape[-1] == 1:
        out = F.interpolate(batched, size=(height, width), mode="nearest")
    else:
        out = F.interpolate(batched, size=(height, width), mode="bilinear", align_corners=True)
    return out[0] if uv.dim() == 3 else out


def yuv420_to_rgb(
    y: torch.Tensor, uv: torch.Tensor, matrix: str = "bt709", full_range: bool = True
) -> torch.Tensor:
    """YUV 4:2:0 planes to RGB.

    Args:
        y: [1, H, W] or [N, 1, H, W] float luma (samples / 255).
        uv: [2, H/2, W/2] or [N, 2, H/2, W/2] float chroma (Cb, Cr).
        matrix, full_range: see :func:`ycbcr_to_rgb`.

    Returns:
        [3, H, W] or [N, 3, H, W] RGB in [0, 1].
    """
    check_float_frames("y", y, 1)
    h, w = y.shape[-2:]
    if uv.shape[-2:] != ((h + 1) // 2, (w + 1) // 2):
        raise ValueError(f"chroma shape {tuple(uv.shape)} does not match luma shape {tuple(y.shape)} for 4:2:0")
    full = upsample_chroma(uv, h, w)
    return ycbcr_to_rgb(torch.cat((y, full), dim=-3), matrix, full_range)


def rgb_to_yuv420(rgb: torch.Tensor, matrix: str = "bt709") -> tuple[torch.Tensor, torch.Tensor]:
    """RGB to full-range YUV 4:2:0 (chroma averaged over 2x2 blocks).

    Args:
        rgb: [3, H, W] or [N, 3, H, W] float RGB in [0, 1], H and W even.
        matrix: ``"bt709"`` or ``"bt601"``.

    Returns:
        (y, uv): [.., 1, H, W] and [.., 2, H/2, W/2].
    """
    check_float_frames("rgb", rgb, 3)
    if rgb.shape[-1] % 2 or rgb.shape[-2] % 2:
        raise ValueError(f"4:2:0 needs even height and width, got shape {tuple(rgb.shape)}")
    ycc = rgb_to_ycbcr(rgb, matrix)
    y, uv = ycc[..., :1, :, :], ycc[..., 1:, :, :]
    batched = uv.unsqueeze(0) if uv.dim() == 3 else uv
    uv = F.avg_pool2d(batched, kernel_size=2, stride=2)
    return y, (uv[0] if rgb.dim() == 3 else uv)
