"""YUV <-> RGB conversion against an independent numpy/scipy transcription of the DCVC convention."""
import numpy as np
import pytest
import scipy.ndimage
import torch

from lwdvc.data.color import rgb_to_luma, rgb_to_ycbcr, rgb_to_yuv420, ycbcr_to_rgb, yuv420_to_rgb


def reference_yuv420_to_rgb(y, uv):
    """BT.709 full range, chroma zoomed with scipy order 1 (as the DCVC-DC/FM scripts)."""
    uv = scipy.ndimage.zoom(uv, (1, 2, 2), order=1)
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    r = y + (2 - 2 * kr) * (uv[1:2] - 0.5)
    b = y + (2 - 2 * kb) * (uv[0:1] - 0.5)
    g = (y - kr * r - kb * b) / kg
    return np.clip(np.concatenate((r, g, b)), 0, 1)


def test_yuv420_to_rgb_matches_scipy_reference():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 256, (1, 24, 40)).astype(np.float64) / 255
    uv = rng.integers(0, 256, (2, 12, 20)).astype(np.float64) / 255
    ours = yuv420_to_rgb(torch.from_numpy(y), torch.from_numpy(uv))
    ref = reference_yuv420_to_rgb(y, uv)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12)


def test_rgb_ycbcr_roundtrip_in_gamut():
    rgb = torch.rand(2, 3, 8, 10, dtype=torch.float64) * 0.8 + 0.1
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    torch.testing.assert_close(back, rgb, atol=1e-12, rtol=0)


def test_luma_weights_bt709_and_bt601():
    rgb = torch.zeros(3, 1, 3, dtype=torch.float64)
    rgb[0, 0, 0] = 1.0  # pure red
    rgb[1, 0, 1] = 1.0  # pure green
    rgb[2, 0, 2] = 1.0  # pure blue
    torch.testing.assert_close(rgb_to_luma(rgb)[0, 0], torch.tensor([0.2126, 0.7152, 0.0722], dtype=torch.float64))
    torch.testing.assert_close(rgb_to_luma(rgb, "bt601")[0, 0],
                               torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64))


def test_limited_range_black_and_white():
    ycc = torch.tensor([[16.0, 235.0], [128.0, 128.0], [128.0, 128.0]]).view(3, 1, 2) / 255
    rgb = ycbcr_to_rgb(ycc, "bt601", full_range=False)
    torch.testing.assert_close(rgb[:, 0, 0], torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(rgb[:, 0, 1], torch.ones(3), atol=1e-6, rtol=0)


def test_rgb_to_yuv420_averages_chroma_blocks():
    rgb = torch.rand(3, 4, 6, dtype=torch.float64)
    y, uv = rgb_to_yuv420(rgb)
    full = rgb_to_ycbcr(rgb)
    assert y.shape == (1, 4, 6) and uv.shape == (2, 2, 3)
    torch.testing.assert_close(uv[:, 1, 2], full[1:, 2:4, 4:6].mean(dim=(-2, -1)))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="3 channel"):
        ycbcr_to_rgb(torch.rand(2, 4, 4))
    with pytest.raises(TypeError, match="floating-point"):
        rgb_to_luma(torch.zeros(3, 4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="chroma shape"):
        yuv420_to_rgb(torch.rand(1, 8, 8), torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="even"):
        rgb_to_yuv420(torch.rand(3, 5, 4))
    with pytest.raises(ValueError, match="unknown colour matrix"):
        rgb_to_luma(torch.rand(3, 4, 4), "bt2020x")
