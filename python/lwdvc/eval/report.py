"""Evaluation reports: RD curves + decoder cost of several models, BD metrics, JSON/Markdown/PNG."""
from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence

import torch

from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.eval.cost import decoder_cost
from lwdvc.eval.rd import bd_metrics, curve_arrays, rd_curve
from lwdvc.eval.sequence import GopSettings
from lwdvc.plots import plot_rd_curves

__all__ = ["evaluate_models", "write_report", "markdown_report", "machine_info"]


def machine_info() -> dict:
    """Where the numbers were measured."""
    return {"machine": platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def evaluate_models(models: Mapping[str, object], sequences: Sequence[PaddedSequence], settings: GopSettings,
                    rates: Sequence[int] | None = None, anchor: str | None = None,
                    latency_repeats: int = 10, progress: bool = True,
                    mac_sources: Mapping[str, object] | None = None) -> dict:
    """RD curve and P-frame decoder cost of every model; BD metrics of each against ``anchor``.

    Args:
        models: ``{label: VideoCodec}``.
        sequences: padded test sequences (the decoder cost uses the first one's padded size).
        settings: GOP size and frames per sequence.
        rates: rate indices (default: every rate point of each model).
        anchor: label of the reference model for BD metrics (default: the first).
        latency_repeats: timed decoder runs per model (median reported); 0 skips timing.
        progress: tqdm bars.
        mac_sources: ``{label: VideoCodec}`` whose decoder MACs and parameters are reported for
            that label (an optimised codec reports its source's; see :func:`decoder_cost`).

    Returns:
        A JSON-able report dict (see :func:`write_report`).
    """
    if not models:
        raise BadArgumentError("no models to evaluate")
    if not sequences:
        raise BadArgumentError("no test sequences to evaluate")
    anchor = anchor or next(iter(models))
    if anchor not in models:
        raise BadArgumentError(f"anchor {anchor!r} is not one of the models: {', '.join(models)}")
    height, width = sequences[0][0].shape[-2:]
    report = {"settings": {"gop": settings.gop, "frames": settings.frames,
                           "sequences": [{"name": s.name, "height": s.original_size[0],
                                          "width": s.original_size[1], "frames": min(len(s), settings.frames)}
                                         for s in sequences],
                           "rate_measure": "estimated entropy of the rounded latents (bits per original pixel)"},
              "machine": machine_info(), "anchor": anchor, "models": {}, "bd": {}}
    for label, codec in models.items():
        model_rates = list(rates) if rates is not None else list(range(codec.num_rates))
        entry = {"rd": rd_curve(codec, sequences, model_rates, settings, label=label, progress=progress)}
        source = (mac_sources or {}).get(label)
        entry["decoder"] = decoder_cost(codec.inter, int(height), int(width), repeats=max(1, latency_repeats),
                                        macs_of=None if source is None else source.inter)
        if latency_repeats == 0:
            entry["decoder"]["latency"] = None
        report["models"][label] = entry
    anchor_entry = report["models"][anchor]
    for label, entry in report["models"].items():
        if label != anchor:
            report["bd"][label] = bd_metrics(anchor_entry["rd"], entry["rd"])
            entry["decoder"]["mac_reduction"] = 1.0 - entry["decoder"]["macs"] / anchor_entry["decoder"]["macs"]
            if entry["decoder"]["latency"] and anchor_entry["decoder"]["latency"]:
                entry["decoder"]["speedup"] = (anchor_entry["decoder"]["latency"]["median_ms"]
                                               / entry["decoder"]["latency"]["median_ms"])
    return report


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_report(report: dict, title: str = "Rate-distortion evaluation") -> str:
    """Human-readable tables of a report."""
    s = report["settings"]
    seqs = ", ".join(f"{q['name']} ({q['width']}x{q['height']}, {q['frames']} frames)" for q in s["sequences"])
    m = report["machine"]
    lines = [f"# {title}", "",
             f"Sequences: {seqs}. GOP {s['gop']}, I-frame then P-frames from the decoded reference. "
             f"Rate: {s['rate_measure']}. Machine: {m['cores']} cores {m['machine']}, torch {m['torch']}.", "",
             "## Rate-distortion", "",
             "| model | rate point | bpp | PSNR RGB (dB) | PSNR Y (dB) | MS-SSIM |", "|---|---|---|---|---|---|"]
    for label, entry in report["models"].items():
        for p in entry["rd"]:
            lines.append(f"| {label} | {p['rate']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | "
                         f"{p['ms_ssim']:.4f} |")
    lines += ["", "## P-frame decoder", "",
              "| model | MACs / frame (G) | MAC reduction | parameters | latency median (ms) | speed-up |",
              "|---|---|---|---|---|---|"]
    for label, entry in report["models"].items():
        d = entry["decoder"]
        latency = d["latency"]["median_ms"] if d.get("latency") else None
        reduction = d.get("mac_reduction")
        lines.append(f"| {label} | {d['macs'] / 1e9:.3f} | {_fmt(None if reduction is None else 100 * reduction, '.1f')}"
                     f"{'%' if reduction is not None else ''} | {d['parameters']:,} | {_fmt(latency, '.1f')} | "
                     f"{_fmt(d.get('speedup'), '.2f')} |")
    if report["bd"]:
        lines += ["", f"## BD metrics against {report['anchor']}", "",
                  "| model | BD-rate RGB (%) | BD-PSNR RGB (dB) | BD-rate Y (%) | BD-PSNR Y (dB) |",
                  "|---|---|---|---|---|"]
        for label, bd in report["bd"].items():
            lines.append(f"| {label} | {_fmt(bd['bd_rate'], '+.2f')} | {_fmt(bd['bd_psnr'], '+.3f')} | "
                         f"{_fmt(bd['bd_rate_y'], '+.2f')} | {_fmt(bd['bd_psnr_y'], '+.3f')} |")
    if report["models"]:
        first = next(iter(report["models"].values()))["decoder"]
        lines += ["", f"Decoder cost at the padded size {first['width']}x{first['height']}; latency: decoder "
                      f"modules only, median of {first['latency']['repeats'] if first.get('latency') else 0} runs, "
                      f"{first['latency']['threads'] if first.get('latency') else '-'} threads."]
    return "\n".join(lines) + "\n"


def write_report(report: dict, out_dir: str | os.PathLike, name: str = "report",
                 title: str = "Rate-distortion evaluation") -> dict[str, str]:
    """Write ``<name>.json``, ``<name>.md`` and the RD plot ``<name>_rd.png`` into ``out_dir``.

    Returns:
        ``{"json", "markdown", "plot"}`` paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, f"{name}.json"), "markdown": os.path.join(out_dir, f"{name}.md"),
             "plot": os.path.join(out_dir, f"{name}_rd.png")}
    with open(paths["json"], "w") as file:
        json.dump(report, file, indent=1)
    with open(paths["markdown"], "w") as file:
        file.write(markdown_report(report, title))
    curves = {label: curve_arrays(entry["rd"]) for label, entry in report["models"].items()}
    notes = {label: f"BD-PSNR {bd['bd_psnr']:+.2f} dB" for label, bd in report["bd"].items()
             if bd.get("bd_psnr") is not None}
    plot_rd_curves(curves, paths["plot"], title=title, annotations=notes)
    return paths
