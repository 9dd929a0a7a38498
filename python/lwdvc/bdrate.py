"""Bjontegaard delta metrics (BD-rate, BD-PSNR) between two rate-distortion curves.

Method (G. Bjontegaard, VCEG-M33, 2001): each curve is interpolated in the (PSNR, log10 rate)
plane and the two interpolants are integrated over the interval where both curves are
defined; the mean difference gives

* BD-rate: ``(10 ** mean(log10 R_test - log10 R_anchor) - 1) * 100`` percent at equal quality
  (negative = the test codec needs fewer bits),
* BD-PSNR: ``mean(PSNR_test - PSNR_anchor)`` dB at equal rate (positive = better).

Interpolation, selected by ``method``:

* ``"cubic"`` - the original VCEG-M33 least-squares cubic polynomial (needs >= 4 points),
* ``"pchip"`` - piecewise cubic Hermite interpolation through the points (needs >= 2),
  used by the JCT-VC / JVET common-test-condition spreadsheets and most recent papers.

Rates may be in any unit (bpp, kbps): only their ratios matter. The distortion may be PSNR or
any other quality measure where larger is better (e.g. MS-SSIM in dB).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator

METHODS = ("cubic", "pchip")


def _curve(rate: Sequence[float], quality: Sequence[float], label: str, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate one RD curve; return (log10 rate, quality) as float64 arrays."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    r = np.asarray(rate, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if r.shape != q.shape:
        raise ValueError(f"{label}: {r.size} rates but {q.size} quality values")
    need = 4 if method == "cubic" else 2
    if r.size < need:
        raise ValueError(f"{label}: the {method!r} method needs at least {need} RD points, got {r.size}")
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(q))):
        raise ValueError(f"{label}: rates and quality values must be finite, "
                         f"got rates={r.tolist()} quality={q.tolist()}")
    if np.any(r <= 0):
        raise ValueError(f"{label}: rates must be positive, got {r.tolist()}")
    return np.log10(r), q


def _integral(x: np.ndarray, y: np.ndarray, lo: float, hi: float, method: str, label: str) -> float:
    """Integral over [lo, hi] of the interpolant of y(x)."""
    if method == "cubic":
        poly = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    order = np.argsort(x)
    xs, ys = x[order], y[order]
    if np.any(np.diff(xs) <= 0):
        raise ValueError(f"{label}: the 'pchip' method needs distinct abscissae, got {xs.tolist()}")
    return float(PchipInterpolator(xs, ys).integrate(lo, hi))


def _curves(rate_anchor, quality_anchor, rate_test, quality_test, method):
    lr_a, q_a = _curve(rate_anchor, quality_anchor, "anchor", method)
    lr_t, q_t = _curve(rate_test, quality_test, "test", method)
    return lr_a, q_a, lr_t, q_t


def _mean_difference(x_a, y_a, x_t, y_t, method: str, axis_name: str) -> float:
    lo = max(x_a.min(), x_t.min())
    hi = min(x_a.max(), x_t.max())
    if not hi > lo:
        raise ValueError(
            f"the RD curves do not overlap in {axis_name}: anchor [{x_a.min():.4g}, {x_a.max():.4g}], "
            f"test [{x_t.min():.4g}, {x_t.max():.4g}]"
        )
    int_a = _integral(x_a, y_a, lo, hi, method, "anchor")
    int_t = _integral(x_t, y_t, lo, hi, method, "test")
    return (int_t - int_a) / (hi - lo)


def bd_rate(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "pchip",
) -> float:
    """BD-rate of the test curve against the anchor, in percent.

    Args:
        rate_anchor, quality_anchor: anchor RD points (rate > 0; quality e.g. PSNR in dB).
        rate_test, quality_test: test RD points.
        method: ``"pchip"`` (default, CTC spreadsheets) or ``"cubic"`` (VCEG-M33).

    Returns:
        Average rate difference at equal quality in percent (-10.0 = 10 % fewer bits).

    Raises:
        ValueError: too few / non-finite / non-positive points, or no quality overlap.
    """
    lr_a, q_a, lr_t, q_t = _curves(rate_anchor, quality_anchor, rate_test, quality_test, method)
    mean_log_diff = _mean_difference(q_a, lr_a, q_t, lr_t, method, "quality")
    return float((10.0**mean_log_diff - 1.0) * 100.0)


def bd_psnr(
    rate_anchor: Sequence[float],
    quality_anchor: Sequence[float],
    rate_test: Sequence[float],
    quality_test: Sequence[float],
    method: str = "pchip",
) -> float:
    """BD-PSNR (or BD-quality) of the test curve against the anchor.

    Args: as :func:`bd_rate`.

    Returns:
        Average quality difference at equal rate, in the unit of the quality values.
    """
    lr_a, q_a, lr_t, q_t = _curves(rate_anchor, quality_anchor, rate_test, quality_test, method)
    return float(_mean_difference(lr_a, q_a, lr_t, q_t, method, "log rate"))
