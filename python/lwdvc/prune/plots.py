"""Training curves of a pruning run (MAC reduction, schedules, flips, losses) as a PNG."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

__all__ = ["plot_training_curves", "plot_run_comparison"]

_PANELS = (
    ("MAC reduction", ("mac_reduction", "proxy_mac_reduction", "target_now", "target")),
    ("schedules", ("beta", "lambda3")),
    ("mask flips per update", ("mask_flips",)),
    ("losses", ("loss", "rd_loss", "bpp", "mse", "ald_loss", "prune_loss")),
    ("distillation loss per layer", None),  # every ald_loss/<layer>
)


def _style_panel(ax, name: str) -> None:
    ax.set_title(name, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def _save_figure(fig, path: str | os.PathLike, title: str | None, dpi: int) -> str:
    """Label the last panel's x axis, add the title, lay out and write the PNG (parents created)."""
    if fig.axes:
        fig.axes[-1].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def plot_training_curves(
    runs: Mapping[str, Sequence[Mapping[str, float]]] | Sequence[Mapping[str, float]],
    path: str | os.PathLike,
    title: str | None = None,
    dpi: int = 110,
) -> str:
    """Plot the curves of one or more runs (e.g. STE vs GD) into one PNG (Agg canvas).

    Args:
        runs: rows of ``metrics()`` dicts (each with ``step``), or ``{run label: rows}``; read
            files with :func:`lwdvc.prune.read_metrics`.
        path: output ``.png``; parent folders are created.
        title: figure title.
        dpi: resolution.

    Returns:
        The path written. Panels whose keys no run has are left out.

    Raises:
        ValueError: no rows at all, or a row without ``step``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(runs, Mapping):
        runs = {"": runs}
    runs = {label: list(rows) for label, rows in runs.items()}
    if not any(runs.values()):
        raise ValueError("plot_training_curves: no metric rows")
    for label, rows in runs.items():
        if any("step" not in r for r in rows):
            raise ValueError(f"plot_training_curves: run {label!r} has a row without 'step'")
    panels = []
    for name, keys in _PANELS:
        if keys is None:
            keys = tuple(sorted({k for rows in runs.values() for r in rows for k in r
                                 if k.startswith("ald_loss/")}))
        present = [k for k in keys if any(k in r for rows in runs.values() for r in rows)]
        if present:
            panels.append((name, present))
    fig = Figure(figsize=(6.5, 2.6 * max(1, len(panels))))
    FigureCanvasAgg(fig)
    for i, (name, keys) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for label, rows in runs.items():
            for key in keys:
                points = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
                if not points:
                    continue
                xs, ys = zip(*points)
                style = "--" if key in ("target", "target_now") else "-"
                ax.plot(xs, ys, style, linewidth=1.2, label=f"{label} {key}".strip())
        _style_panel(ax, name)
    return _save_figure(fig, path, title, dpi)


def _moving_average(values: Sequence[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


#: (panel title, metric key, smoothed, cumulative, log scale) of :func:`plot_run_comparison`.
_COMPARISON = (
    ("training loss (moving average)", "loss", True, False, True),
    ("distortion MSE (moving average)", "mse", True, False, True),
    ("MAC reduction (sparsity)", "mac_reduction", False, False, False),
    ("mask flips (cumulative)", "mask_flips", False, True, False),
)


def plot_run_comparison(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | os.PathLike,
    title: str | None = None,
    window: int = 20,
    dpi: int = 110,
) -> str:
    """Several runs (e.g. the ablation's variants) side by side: one line per run and panel.

    Panels: training loss and MSE (moving average over ``window`` rows, log scale), MAC
    reduction, cumulative mask flips. Returns the path written.

    Raises:
        ValueError: no run has rows.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = {label: [r for r in rows if "step" in r] for label, rows in runs.items()}
    if not any(runs.values()):
        raise ValueError("plot_run_comparison: no metric rows")
    fig = Figure(figsize=(6.5, 2.4 * len(_COMPARISON)))
    FigureCanvasAgg(fig)
    for i, (name, key, smooth, cumulative, log) in enumerate(_COMPARISON):
        ax = fig.add_subplot(len(_COMPARISON), 1, i + 1)
        for label, rows in runs.items():
            points = [(r["step"], float(r[key])) for r in rows if r.get(key) is not None]
            if not points:
                continue
            xs, ys = zip(*points)
            ys = _moving_average(ys, window) if smooth else list(ys)
            if cumulative:
                ys = [sum(ys[:j + 1]) for j in range(len(ys))]
            ax.plot(xs, ys, linewidth=1.2, label=label)
        if log:
            ax.set_yscale("log")
        _style_panel(ax, name)
    return _save_figure(fig, path, title, dpi)
