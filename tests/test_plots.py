"""Plots: per-frame series and training histories are written as PNG, bad series are named."""
from __future__ import annotations

import pytest

from lwdvc.plots import plot_per_frame, plot_training_history

PNG = b"\x89PNG\r\n\x1a\n"


def test_training_history_plot(tmp_path):
    history = [{"step": s, "loss": 1.0 / s, "psnr": 20 + s / 10, "bpp": 0.1} for s in range(1, 30)]
    flow = [{"step": s, "loss": 5.0 - s / 10, "psnr": 25.0} for s in range(1, 12)]  # no bpp: left out there
    path = plot_training_history({"intra": history, "flow": flow}, tmp_path / "curves.png", smooth=3)
    assert open(path, "rb").read(8) == PNG
    with pytest.raises(ValueError, match="at least one history"):
        plot_training_history({}, tmp_path / "none.png")


def test_per_frame_plot_checks_lengths(tmp_path):
    path = plot_per_frame({"a": {"psnr": [30.0, 29.0], "bpp": [0.5, 0.05]}}, tmp_path / "frames.png")
    assert open(path, "rb").read(8) == PNG
    with pytest.raises(ValueError, match="series 'b'"):
        plot_per_frame({"b": {"psnr": [30.0], "bpp": [0.5, 0.1]}}, tmp_path / "bad.png")
