"""The ablation's tables: one row per run, and mean +- spread over the seeds of each setting.

A run is one (variant, selection, seed); its row (``dict``) holds ``variant``, ``selection``,
``seed``, ``bd_psnr``, ``bd_psnr_y``, ``bd_rate`` (None where the RD curves do not overlap),
``mac_reduction``, ``mask_flips_total``, ``final_loss`` and ``rd`` (the RD points).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["run_key", "mean_offsets", "mean_spread", "markdown_tables"]


def run_key(variant: str, selection: str, seed: int) -> str:
    """The name of one run in the report, e.g. ``"GD + ALD | budget | seed 1"``."""
    return f"{variant} | {selection} | seed {seed}"


def mean_offsets(anchor: list[dict], points: list[dict]) -> tuple[float, float]:
    """Mean PSNR difference (dB) and mean relative bpp difference (%) at the same rate points."""
    by_rate = {p["rate"]: p for p in anchor}
    pairs = [(by_rate[p["rate"]], p) for p in points if p["rate"] in by_rate]
    d_psnr = sum(q["psnr"] - a["psnr"] for a, q in pairs) / len(pairs)
    d_bpp = sum(q["bpp"] / a["bpp"] - 1.0 for a, q in pairs) / len(pairs)
    return d_psnr, 100.0 * d_bpp


def mean_spread(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation, count) of the values that are not None.

    The deviation is None for fewer than two values; the mean is None for none.
    """
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None, 0
    mean = sum(present) / len(present)
    if len(present) < 2:
        return mean, None, len(present)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in present) / (len(present) - 1)), len(present)


def _fmt(value: float | None, digits: int, sign: bool = True) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _fmt_spread(values: Sequence[float | None], digits: int, scale: float = 1.0, sign: bool = True) -> str:
    mean, spread, count = mean_spread([None if v is None else v * scale for v in values])
    if mean is None:
        return "n/a"
    text = _fmt(mean, digits, sign)
    if spread is not None:
        text += f" +- {spread:.{digits}f}"
    missing = len(values) - count
    return text + (f" ({missing} n/a)" if missing else "")


def _settings(rows: list[dict]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in rows:
        if (r["variant"], r["selection"]) not in seen:
            seen.append((r["variant"], r["selection"]))
    return seen


def markdown_tables(rows: list[dict], settings: dict, anchor: list[dict]) -> str:
    """Table 2 over seeds (mean +- sample standard deviation) and the table of every run."""
    lines = ["# Ablation: gradient mode and distillation at one MAC budget", "",
             f"Teacher {settings['model']}; target {100 * settings['target']:.0f}% fewer P-frame decoder MACs; "
             f"{settings['steps']} fine-tuning steps per run; test: {settings['sequences']} "
             f"(GOP {settings['gop']}, {settings['frames']} frames, every rate point). BD metrics are n/a "
             "where the two RD curves do not overlap; the mean offsets compare equal rate points. "
             "Spread: sample standard deviation over the seeds.", "",
             "## Mean over seeds", "",
             "| variant | selection | seeds | BD-PSNR RGB vs teacher (dB) | BD-PSNR Y (dB) | BD-rate (%) | "
             "MAC reduction (%) | mask flips |",
             "|---|---|---|---|---|---|---|---|"]
    for variant, selection in _settings(rows):
        runs = [r for r in rows if r["variant"] == variant and r["selection"] == selection]
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(f"| {variant} | {selection} | {seeds} | {_fmt_spread([r['bd_psnr'] for r in runs], 3)} | "
                     f"{_fmt_spread([r['bd_psnr_y'] for r in runs], 3)} | "
                     f"{_fmt_spread([r['bd_rate'] for r in runs], 2)} | "
                     f"{_fmt_spread([r['mac_reduction'] for r in runs], 1, 100.0, sign=False)} | "
                     f"{_fmt_spread([r['mask_flips_total'] for r in runs], 0, sign=False)} |")
    lines += ["", "## Every run", "",
              "| variant | selection | seed | BD-PSNR RGB / Y (dB) | BD-rate (%) | mean PSNR offset (dB) | "
              "mean bpp offset (%) | MAC reduction | mask flips | final loss |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d_psnr, d_bpp = mean_offsets(anchor, r["rd"])
        lines.append(f"| {r['variant']} | {r['selection']} | {r['seed']} | "
                     f"{_fmt(r['bd_psnr'], 3)} / {_fmt(r['bd_psnr_y'], 3)} | {_fmt(r['bd_rate'], 2)} | "
                     f"{d_psnr:+.2f} | {d_bpp:+.1f} | {100 * r['mac_reduction']:.1f}% | "
                     f"{r['mask_flips_total']:.0f} | {r['final_loss']:.4f} |")
    return "\n".join(lines) + "\n"
