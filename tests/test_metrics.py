"""PSNR, SSIM / MS-SSIM and bpp helpers: closed-form values, properties, pytorch_msssim parity."""
import math

import pytest
import torch

from lwdvc.metrics import (
    MS_SSIM_WEIGHTS,
    MS_SSIM_WEIGHTS_4,
    bits_from_likelihoods,
    bpp,
    bpp_to_kbps,
    bytes_to_bpp,
    mean_finite,
    ms_ssim,
    mse,
    psnr,
    psnr_y,
    psnr_yuv420,
    ssim,
)


def noisy_pair(shape, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    y = (x + sigma * torch.randn(shape, generator=g)).clamp(0, 1)
    return x, y


def test_psnr_closed_form():
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 0.5
    d = 0.05
    value = psnr(x, x + d)
    torch.testing.assert_close(value, torch.full((2,), 20 * math.log10(1 / d), dtype=torch.float64))
    assert psnr(x[0], x[0]).item() == pytest.approx(100.0)  # MSE floored at 1e-10
    assert psnr(x * 255, (x + d) * 255, data_range=255).tolist() == pytest.approx(value.tolist())
    assert mse(x, x + d).tolist() == pytest.approx([d * d, d * d])


def test_psnr_y_and_yuv420():
    x = torch.rand(3, 16, 24, dtype=torch.float64) * 0.8
    shifted = x + 0.1  # adding 0.1 to R, G and B adds 0.1 to Y (weights sum to 1), nothing to U/V
    assert psnr_y(x, shifted).item() == pytest.approx(20.0)
    out = psnr_yuv420(x, shifted)
    assert out["y"].item() == pytest.approx(20.0)
    assert out["u"].item() > 90 and out["v"].item() > 90
    assert out["yuv"].item() == pytest.approx((6 * out["y"] + out["u"] + out["v"]).item() / 8)


def test_ms_ssim_properties():
    x, y = noisy_pair((2, 3, 176, 200), 0.1)
    assert torch.allclose(ms_ssim(x, x), torch.ones(2, dtype=torch.float64))
    v = ms_ssim(x, y)
    assert v.shape == (2,) and torch.all((v > 0) & (v < 1))
    torch.testing.assert_close(ms_ssim(y, x), v)  # symmetric
    _, worse = noisy_pair((2, 3, 176, 200), 0.2)
    assert torch.all(ms_ssim(x, worse) < v)  # more noise, lower score
    assert ms_ssim(x[0], y[0]).item() == pytest.approx(v[0].item())


def test_ssim_and_ms_ssim_of_flat_images_closed_form():
    a, b = 0.3, 0.6  # 176 halves evenly down to 11, so every scale stays flat
    x = torch.full((1, 3, 176, 176), a, dtype=torch.float64)
    y = torch.full((1, 3, 176, 176), b, dtype=torch.float64)
    c1 = 0.01**2
    luminance = (2 * a * b + c1) / (a * a + b * b + c1)  # contrast/structure terms are exactly 1
    assert ssim(x, y, dtype=torch.float64).item() == pytest.approx(luminance, rel=1e-12)
    assert ms_ssim(x, y, dtype=torch.float64).item() == pytest.approx(luminance ** MS_SSIM_WEIGHTS[-1], rel=1e-12)
    assert ms_ssim(x, y).item() == pytest.approx(luminance ** MS_SSIM_WEIGHTS[-1], rel=5e-5)  # float32


def test_ms_ssim_small_frames_need_fewer_scales():
    x, y = noisy_pair((1, 3, 144, 176), 0.05)  # QCIF
    with pytest.raises(ValueError, match="needs both sides > 160"):
        ms_ssim(x, y)
    v = ms_ssim(x, y, weights=MS_SSIM_WEIGHTS_4)
    assert 0.5 < v.item() < 1


@pytest.mark.parametrize("shape,weights", [((2, 3, 200, 170), None), ((1, 3, 161, 175), None),
                                           ((2, 1, 190, 255), MS_SSIM_WEIGHTS)])
def test_ms_ssim_matches_pytorch_msssim(shape, weights):
    reference = pytest.importorskip("pytorch_msssim")
    x, y = noisy_pair(shape, 0.08, seed=shape[-1])
    ours = ms_ssim(x, y, weights=weights)
    theirs = reference.ms_ssim(x, y, data_range=1.0, size_average=False, weights=weights)
    torch.testing.assert_close(ours.float(), theirs, atol=1e-5, rtol=0)  # both filter in float32
    precise = ms_ssim(x.double(), y.double(), weights=weights, dtype=torch.float64)
    torch.testing.assert_close(ours, precise, atol=2e-5, rtol=0)  # float32 filtering error
    torch.testing.assert_close(ssim(x, y).float(), reference.ssim(x, y, data_range=1.0, size_average=False),
                               atol=1e-5, rtol=0)


def test_metric_input_errors():
    x = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, torch.rand(3, 8, 9))
    with pytest.raises(TypeError, match="floating"):
        psnr(x, (x * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="3 channel"):
        psnr_y(torch.rand(1, 8, 8), torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        ms_ssim(torch.rand(8, 8), torch.rand(8, 8))


def test_bits_and_bpp_helpers():
    half = torch.full((4, 10), 0.5)
    quarter = torch.full((3,), 0.25)
    assert bits_from_likelihoods(half).item() == pytest.approx(40.0)
    assert bits_from_likelihoods({"y": half, "z": quarter}).item() == pytest.approx(46.0)
    assert bits_from_likelihoods([torch.zeros(1)]).item() == pytest.approx(-math.log2(1e-9))
    assert bpp(46.0, 2, 23) == pytest.approx(1.0)
    assert bpp(torch.tensor(96.0), 4, 4, frames=3).item() == pytest.approx(2.0)
    assert bytes_to_bpp(1000, 100, 80) == pytest.approx(1.0)
    assert bpp_to_kbps(0.1, 1080, 1920, 30) == pytest.approx(0.1 * 1080 * 1920 * 30 / 1000)
    assert mean_finite([1.0, 2.0, 4.5]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="not finite"):
        mean_finite([1.0, float("inf")])
    with pytest.raises(ValueError, match="positive pixel"):
        bpp(1.0, 0, 10)
    with pytest.raises(ValueError, match="at least one"):
        bits_from_likelihoods([])
