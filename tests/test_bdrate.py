"""BD-rate / BD-PSNR: exact values on curves with a known answer, parity with `bjontegaard`, errors, plot."""
import math

import numpy as np
import pytest

from lwdvc.bdrate import bd_psnr, bd_rate
from lwdvc.plots import plot_rd_curves

# RD points of two HEVC encodes (ffmpeg libx265, two presets): the example data of the
# `bjontegaard` package's documentation.
RATE_A = [9487.76, 4593.60, 2486.44, 1358.24]
PSNR_A = [40.037, 38.615, 36.845, 34.851]
RATE_T = [9787.80, 4469.00, 2451.52, 1356.24]
PSNR_T = [40.121, 38.651, 36.970, 34.987]
METHODS = ["cubic", "pchip"]


@pytest.mark.parametrize("method", METHODS)
def test_rate_scaled_curve_gives_exact_bd_rate(method):
    rates = [0.05, 0.1, 0.2, 0.4, 0.8]
    quality = [30.1, 32.4, 34.2, 36.3, 37.9]  # a concave, non-linear curve
    assert bd_rate(rates, quality, [0.8 * r for r in rates], quality, method) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(rates, quality, rates, quality, method) == pytest.approx(0.0, abs=1e-12)
    shifted = [q + 0.5 for q in quality]
    assert bd_psnr(rates, quality, rates, shifted, method) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_log_linear_curves_closed_form(method):
    # PSNR = a + b log10(R): a gain of d dB equals a rate factor 10^(-d/b) everywhere.
    b, d = 10.0, 0.8
    rate_a = np.array([0.02, 0.05, 0.11, 0.3, 0.7])
    rate_t = rate_a * 1.13  # different sample positions, still overlapping
    psnr_a = 28 + b * np.log10(rate_a / 0.02)
    psnr_t = 28 + d + b * np.log10(rate_t / 0.02)
    assert bd_rate(rate_a, psnr_a, rate_t, psnr_t, method) == pytest.approx((10 ** (-d / b) - 1) * 100, abs=1e-9)
    assert bd_psnr(rate_a, psnr_a, rate_t, psnr_t, method) == pytest.approx(d, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_swapping_anchor_and_test_inverts(method):
    r1 = bd_rate(RATE_A, PSNR_A, RATE_T, PSNR_T, method) / 100
    r2 = bd_rate(RATE_T, PSNR_T, RATE_A, PSNR_A, method) / 100
    assert (1 + r1) * (1 + r2) == pytest.approx(1.0, abs=1e-12)
    assert bd_psnr(RATE_A, PSNR_A, RATE_T, PSNR_T, method) == pytest.approx(
        -bd_psnr(RATE_T, PSNR_T, RATE_A, PSNR_A, method), abs=1e-12)
    # point order does not matter
    assert bd_rate(RATE_A[::-1], PSNR_A[::-1], RATE_T, PSNR_T, method) == pytest.approx(r1 * 100, abs=1e-9)


def test_documented_example_values():
    # the test encode is slightly better: fewer bits at equal PSNR, higher PSNR at equal rate
    for method in METHODS:
        assert -4.5 < bd_rate(RATE_A, PSNR_A, RATE_T, PSNR_T, method) < -4.3
        assert 0.11 < bd_psnr(RATE_A, PSNR_A, RATE_T, PSNR_T, method) < 0.13


@pytest.mark.parametrize("method", METHODS)
def test_matches_bjontegaard_package(method):
    bd = pytest.importorskip("bjontegaard")
    rng = np.random.default_rng(7)
    cases = [(RATE_A, PSNR_A, RATE_T, PSNR_T)]
    for _ in range(5):  # monotone curves, points in increasing rate order (the package needs that)
        rate_a = np.sort(rng.uniform(0.02, 1.0, 4))
        rate_t = np.sort(rate_a * rng.uniform(0.85, 1.1, 4))
        psnr_a = np.sort(30 + 4 * np.log(rate_a * 100) + rng.normal(0, 0.05, 4))
        psnr_t = np.sort(30.2 + 4 * np.log(rate_t * 100) + rng.normal(0, 0.05, 4))
        cases.append((rate_a, psnr_a, rate_t, psnr_t))
    for ra, pa, rt, pt in cases:
        expected_rate = bd.bd_rate(ra, pa, rt, pt, method=method, min_overlap=0)
        expected_psnr = bd.bd_psnr(ra, pa, rt, pt, method=method, min_overlap=0)
        assert bd_rate(ra, pa, rt, pt, method) == pytest.approx(expected_rate, abs=1e-7)
        assert bd_psnr(ra, pa, rt, pt, method) == pytest.approx(expected_psnr, abs=1e-7)


def test_bad_curves_raise():
    with pytest.raises(ValueError, match="at least 4 RD points"):
        bd_rate([1, 2, 3], [30, 31, 32], [1, 2, 3], [30, 31, 32], "cubic")
    with pytest.raises(ValueError, match="rates must be positive"):
        bd_rate([0, 2], [30, 31], [1, 2], [30, 31])
    with pytest.raises(ValueError, match="do not overlap"):
        bd_rate([1, 2], [30, 31], [1, 2], [35, 36])
    with pytest.raises(ValueError, match="distinct"):
        bd_rate([1, 2, 3], [30, 30, 31], [1, 2, 3], [30, 30.5, 31])
    with pytest.raises(ValueError, match="3 rates but 2"):
        bd_psnr([1, 2, 3], [30, 31], [1, 2], [30, 31])
    with pytest.raises(ValueError, match="method"):
        bd_rate(RATE_A, PSNR_A, RATE_T, PSNR_T, "akima2")
    with pytest.raises(ValueError, match="finite"):
        bd_rate([1, 2], [30, math.nan], [1, 2], [30, 31])


def test_rd_plot_writes_png(tmp_path):
    import matplotlib.image

    path = plot_rd_curves(
        {"anchor": (RATE_A, PSNR_A), "test": (RATE_T, PSNR_T)}, tmp_path / "sub" / "rd.png",
        xlabel="kbps", title="example", annotations={"test": "BD-rate -4.4 %"},
    )
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0.01  # not a blank canvas
    with pytest.raises(ValueError, match="at least one curve"):
        plot_rd_curves({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="'bad'"):
        plot_rd_curves({"bad": ([1, 2], [3])}, tmp_path / "x.png")
