"""Distortion and rate metrics: PSNR (RGB, Y, YUV 4:2:0), MS-SSIM and bits-per-pixel helpers.

Conventions:

* Frames are float tensors [3, H, W] or [N, 3, H, W] in [0, 1] (``data_range=1``); metrics are
  returned per image (a 0-d tensor for [3, H, W], shape [N] for a batch) in float64.
* PSNR on RGB is the one the DCVC test scripts report: ``10 log10(L^2 / MSE)`` over all three
  channels. Identical images would give infinity; the MSE is floored at 1e-10 (100 dB at L=1),
  so averages over frames stay finite (the DCVC-DC scripts print a fixed 999.9 instead).
* PSNR-Y uses full-range BT.709 luma (``Y = 0.2126 R + 0.7152 G + 0.0722 B``), the matrix the
  DCVC-DC / DCVC-FM scripts use for their YUV conversion (see :mod:`lwdvc.data.color`).
* MS-SSIM is Wang, Simoncelli & Bovik (2003): 11-tap Gaussian window (sigma 1.5), valid
  filtering, K1 = 0.01, K2 = 0.03, five scales weighted (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333), 2x2 average pooling between scales (an odd side gets one zero on each end, counted
  in the average, as in ``pytorch_msssim``, whose ``ms_ssim`` the DCVC / DCVC-HEM test scripts
  call), negative terms clipped to 0; the RGB value is the mean of the per-channel values. Five scales need both
  sides > 160 pixels; smaller frames (>= 88)
  can use the 4-scale weights :data:`MS_SSIM_WEIGHTS_4` that HM and the DCVC-DC scripts use.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from lwdvc.data.color import check_float_frames, rgb_to_luma, rgb_to_yuv420

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WEIGHTS_4 = (0.0517, 0.3295, 0.3462, 0.2726)
MIN_MSE = 1e-10


def _check_pair(x: torch.Tensor, y: torch.Tensor, channels: int | None = None) -> None:
    check_float_frames("x", x, channels)
    check_float_frames("y", y, channels)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"x and y are on different devices: {x.device} and {y.device}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, float64: 0-d for [C, H, W], [N] for [N, C, H, W]."""
    _check_pair(x, y)
    diff = x.double() - y.double()
    return diff.square().mean(dim=(-3, -2, -1))


def psnr_from_mse(mse_value: torch.Tensor | float, data_range: float = 1.0) -> torch.Tensor:
    """``10 log10(data_range^2 / max(mse, 1e-10))`` in dB (float64)."""
    m = torch.as_tensor(mse_value, dtype=torch.float64).clamp_min(MIN_MSE)
    return 10.0 * torch.log10(data_range**2 / m)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """RGB (all-channel) PSNR in dB per image.

    Args:
        x, y: [3, H, W] or [N, 3, H, W] (any channel count is accepted).
        data_range: peak value (1.0 for [0, 1] frames).
    """
    return psnr_from_mse(mse(x, y), data_range)


def psnr_y(x: torch.Tensor, y: torch.Tensor, matrix: str = "bt709") -> torch.Tensor:
    """PSNR of the full-range luma (BT.709 by default) of two RGB images in [0, 1], in dB."""
    _check_pair(x, y, 3)
    return psnr(rgb_to_luma(x, matrix), rgb_to_luma(y, matrix))


def psnr_yuv420(
    x: torch.Tensor, y: torch.Tensor, weights: tuple[float, float, float] = (6.0, 1.0, 1.0), matrix: str = "bt709"
) -> dict[str, torch.Tensor]:
    """PSNR of Y, U, V after RGB -> YUV 4:2:0 and their weighted mean (6:1:1 as in JVET CTC).

    Returns:
        ``{"y", "u", "v", "yuv"}`` each 0-d or [N] in dB. H and W must be even.
    """
    _check_pair(x, y, 3)
    (y1, uv1), (y2, uv2) = rgb_to_yuv420(x, matrix), rgb_to_yuv420(y, matrix)
    out = {
        "y": psnr(y1, y2),
        "u": psnr(uv1[..., :1, :, :], uv2[..., :1, :, :]),
        "v": psnr(uv1[..., 1:, :, :], uv2[..., 1:, :, :]),
    }
    total = sum(weights)
    out["yuv"] = (weights[0] * out["y"] + weights[1] * out["u"] + weights[2] * out["v"]) / total
    return out


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian [size]."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter(img: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of [N, C, H, W], per channel."""
    c = img.shape[1]
    k = window.numel()
    out = F.conv2d(img, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(out, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, window: torch.Tensor, data_range: float, k1: float, k2: float):
    """Mean SSIM and mean contrast-structure per image and channel, each [N, C] (float64).

    The five local moments are filtered in one grouped convolution.
    """
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    c = x.shape[1]
    moments = _filter(torch.cat((x, y, x * x, y * y, x * y), dim=1), window)
    mu_x, mu_y, e_xx, e_yy, e_xy = moments.split(c, dim=1)
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov = e_xy - mu_x * mu_y
    cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
    lum_map = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (lum_map * cs_map).double().mean(dim=(-2, -1)), cs_map.double().mean(dim=(-2, -1))


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5,
    k1: float = 0.01, k2: float = 0.03, dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Single-scale SSIM per image (mean over channels), returned as float64.

    ``dtype`` is the filtering precision (float32 by default, as pytorch_msssim; float64 is
    about 3x slower on CPU).
    """
    _check_pair(x, y)
    batched = x.dim() == 4
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    if min(xb.shape[-2:]) < win_size:
        raise ValueError(f"SSIM needs both sides >= {win_size}, got shape {tuple(x.shape)}")
    window = gaussian_window(win_size, sigma, dtype=dtype, device=x.device)
    s, _ = _ssim_terms(xb.to(dtype), yb.to(dtype), window, data_range, k1, k2)
    s = s.mean(dim=1)
    return s if batched else s[0]


def ms_ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, weights: Iterable[float] | None = None,
    win_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Multi-scale SSIM per image (mean over channels), returned as float64.

    Args:
        x, y: [C, H, W] or [N, C, H, W] in [0, data_range].
        data_range: peak value.
        weights: per-scale exponents (default :data:`MS_SSIM_WEIGHTS`, 5 scales).
        win_size, sigma, k1, k2: SSIM constants.
        dtype: filtering precision (float32 default; float64 for reference values).

    Returns:
        0-d or [N] values in [0, 1].

    Raises:
        ValueError: frames too small for the number of scales (the message gives the minimum).
    """
    _check_pair(x, y)
    w = torch.tensor(tuple(MS_SSIM_WEIGHTS if weights is None else weights), dtype=torch.float64, device=x.device)
    levels = w.numel()
    if levels < 1:
        raise ValueError("ms_ssim needs at least one scale weight")
    need = (win_size - 1) * 2 ** (levels - 1)
    if min(x.shape[-2:]) <= need:
        raise ValueError(
            f"MS-SSIM with {levels} scales needs both sides > {need} pixels, got shape {tuple(x.shape)}; "
            f"use weights=MS_SSIM_WEIGHTS_4 (sides > {(win_size - 1) * 8}) for small frames"
        )
    batched = x.dim() == 4
    xb, yb = (x, y) if batched else (x.unsqueeze(0), y.unsqueeze(0))
    xb, yb = xb.to(dtype), yb.to(dtype)
    window = gaussian_window(win_size, sigma, dtype=dtype, device=x.device)
    factors = []
    for level in range(levels):
        s, cs = _ssim_terms(xb, yb, window, data_range, k1, k2)
        if level < levels - 1:
            factors.append(cs.clamp_min(0.0))
            pad = (xb.shape[-2] % 2, xb.shape[-1] % 2)
            xb = F.avg_pool2d(xb, kernel_size=2, padding=pad)
            yb = F.avg_pool2d(yb, kernel_size=2, padding=pad)
        else:
            factors.append(s.clamp_min(0.0))
    stack = torch.stack(factors, dim=0)  # [levels, N, C]
    value = torch.prod(stack ** w.view(-1, 1, 1), dim=0).mean(dim=1)
    return value if batched else value[0]


def bits_from_likelihoods(likelihoods: torch.Tensor | Iterable | Mapping) -> torch.Tensor:
    """Estimated bits ``sum(-log2 p)`` of one or more likelihood tensors (a dict's values too).

    Likelihoods are floored at 1e-9 so a zero probability costs ~30 bits, not infinity.
    """
    if isinstance(likelihoods, Mapping):
        likelihoods = list(likelihoods.values())
    if isinstance(likelihoods, torch.Tensor):
        likelihoods = [likelihoods]
    tensors = list(likelihoods)
    if not tensors:
        raise ValueError("bits_from_likelihoods needs at least one likelihood tensor")
    total = torch.zeros((), dtype=torch.float64, device=tensors[0].device)
    for t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"likelihoods must be tensors, got {type(t).__name__}")
        total = total + (-torch.log2(t.double().clamp_min(1e-9))).sum()
    return total


def bpp(bits: torch.Tensor | float, height: int, width: int, frames: int = 1) -> torch.Tensor | float:
    """Bits per pixel: ``bits / (frames * height * width)`` (pixels of the original, unpadded size)."""
    pixels = frames * height * width
    if pixels <= 0:
        raise ValueError(f"bpp needs a positive pixel count, got frames={frames}, height={height}, width={width}")
    return bits / pixels


def bytes_to_bpp(num_bytes: int, height: int, width: int, frames: int = 1) -> float:
    """Bits per pixel of a bitstream of ``num_bytes`` bytes."""
    return float(bpp(8.0 * num_bytes, height, width, frames))


def bpp_to_kbps(bpp_value: float, height: int, width: int, fps: float) -> float:
    """Bit rate in kbit/s of ``bpp_value`` at a frame size and frame rate."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return bpp_value * height * width * fps / 1000.0


def mean_finite(values: Iterable[float]) -> float:
    """Mean of per-frame metric values; raises ValueError on an empty list or a NaN/inf value."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("cannot average an empty list of metric values")
    bad = [v for v in vals if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{len(bad)} metric values are not finite, e.g. {bad[0]}")
    return sum(vals) / len(vals)
