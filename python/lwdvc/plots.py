"""Rate-distortion plots written as PNG files (matplotlib's Agg canvas, no display needed)."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np


def plot_rd_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | os.PathLike,
    xlabel: str = "bits per pixel",
    ylabel: str = "PSNR (dB)",
    title: str | None = None,
    annotations: Mapping[str, str] | None = None,
    dpi: int = 120,
) -> str:
    """Draw RD curves (one line with markers per codec, points sorted by rate) into a PNG.

    Args:
        curves: ``{label: (rates, qualities)}``.
        path: output file (``.png``); parent folders are created.
        xlabel, ylabel, title: axis labels and optional title.
        annotations: optional ``{label: text}`` appended to the legend entries
            (e.g. the BD-rate against the anchor).
        dpi: resolution.

    Returns:
        The path written.

    Raises:
        ValueError: no curves, or a curve whose rate and quality lists differ in length or are empty.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not curves:
        raise ValueError("plot_rd_curves needs at least one curve")
    path = os.fspath(path)
    fig = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, (rates, qualities) in curves.items():
        r = np.asarray(rates, dtype=np.float64).ravel()
        q = np.asarray(qualities, dtype=np.float64).ravel()
        if r.size == 0 or r.shape != q.shape:
            raise ValueError(f"curve {label!r}: {r.size} rates and {q.size} quality values")
        order = np.argsort(r)
        text = label if not annotations or label not in annotations else f"{label} ({annotations[label]})"
        ax.plot(r[order], q[order], marker="o", linewidth=1.5, markersize=4, label=text)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")  # "best" avoids covering a curve
    fig.tight_layout()
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path


def plot_per_frame(
    series: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 120,
) -> str:
    """PSNR (top) and bits per pixel (bottom, log scale) of every coded frame, one line per label.

    Args:
        series: ``{label: {"psnr": [...], "bpp": [...]}}`` (lists of equal length per label).
        path: output PNG.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not series:
        raise ValueError("plot_per_frame needs at least one series")
    fig = Figure(figsize=(7.0, 5.5))
    FigureCanvasAgg(fig)
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    for label, values in series.items():
        if len(values["psnr"]) != len(values["bpp"]) or not values["psnr"]:
            raise ValueError(f"series {label!r}: {len(values['psnr'])} PSNR and {len(values['bpp'])} bpp values")
        frames = np.arange(len(values["psnr"]))
        top.plot(frames, values["psnr"], linewidth=1.2, label=label)
        bottom.semilogy(frames, values["bpp"], linewidth=1.2, label=label)
    top.set_ylabel("PSNR RGB (dB)")
    bottom.set_ylabel("bits per pixel")
    bottom.set_xlabel("frame")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    top.legend(loc="best", fontsize="x-small")
    if title:
        top.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    fig.savefig(os.fspath(path), dpi=dpi, format="png")
    return os.fspath(path)
