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


def plot_training_history(
    histories: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | os.PathLike,
    keys: Sequence[str] = ("loss", "psnr", "bpp"),
    title: str | None = None,
    smooth: int = 5,
    dpi: int = 120,
) -> str:
    """Training curves of several runs or stages: one panel per key, one line per run.

    Args:
        histories: ``{label: [{"step": ..., key: ...}, ...]}`` (the ``history`` of a training
            checkpoint).
        path: output PNG.
        keys: which values to draw (a run lacking a key is left out of that panel).
        smooth: moving-average window over the history rows (1: raw values).

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not histories:
        raise ValueError("plot_training_history needs at least one history")
    fig = Figure(figsize=(7.0, 2.4 * len(keys)))
    FigureCanvasAgg(fig)
    window = max(1, int(smooth))
    for row, key in enumerate(keys):
        ax = fig.add_subplot(len(keys), 1, row + 1)
        for label, history in histories.items():
            points = [(r["step"], r[key]) for r in history if key in r]
            if not points:
                continue
            steps, values = (np.asarray(v, dtype=np.float64) for v in zip(*points))
            if window > 1 and values.size >= window:
                values = np.convolve(values, np.ones(window) / window, mode="valid")
                steps = steps[window - 1:]
            ax.plot(steps, values, linewidth=1.2, label=label)
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        if row == 0:
            ax.legend(loc="best", fontsize="x-small")
            if title:
                ax.set_title(title)
    fig.axes[-1].set_xlabel("step")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    fig.savefig(os.fspath(path), dpi=dpi, format="png")
    return os.fspath(path)
