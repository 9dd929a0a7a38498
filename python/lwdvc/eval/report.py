"""Evaluation reports: RD curves + decoder cost of several models, BD metrics, JSON/Markdown/PNG."""
from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence

import torch

from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.eval.classical import ClassicalCodec, classical_curve
from lwdvc.eval.cost import decoder_cost
from lwdvc.eval.rd import bd_metrics, curve_arrays, rd_curve
from lwdvc.eval.sequence import GopSettings
from lwdvc.plots import plot_per_frame, plot_rd_curves

__all__ = ["evaluate_models", "write_report", "markdown_report", "machine_info"]


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Where the numbers were measured."""
    return {"machine": platform.machine(), "cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "cuda": torch.cuda.is_available()}


def evaluate_models(models: Mapping[str, object], sequences: Sequence[PaddedSequence], settings: GopSettings,
                    rates: Sequence[int] | None = None, anchor: str | None = None,
                    latency_repeats: int = 10, progress: bool = True,
                    mac_sources: Mapping[str, object] | None = None,
                    classical: Sequence[ClassicalCodec] = (), all_intra: bool = False,
                    bitstream: bool = False) -> dict:
    """RD curve and P-frame decoder cost of every model; BD metrics of each against ``anchor``.

    Classical codecs (x264, x265) are coded on the same frames with the same GOP; their curves
    sit under ``report["classical"]``, every learnt model gets BD metrics against each of them
    (``report["bd_classical"][codec label][model label]``), and one of them may be the BD
    reference (``anchor`` = its label, e.g. "x264 medium").

    Args:
        models: ``{label: VideoCodec}``.
        sequences: padded test sequences (the decoder cost uses the first one's padded size).
        settings: GOP size and frames per sequence.
        rates: rate indices (default: every rate point of each model).
        anchor: label of the reference model or classical codec for BD metrics (default: the
            first model).
        latency_repeats: timed decoder runs per model (median reported); 0 skips timing.
        progress: tqdm bars.
        mac_sources: ``{label: VideoCodec}`` whose decoder MACs and parameters are reported for
            that label (an optimised codec reports its source's; see :func:`decoder_cost`).
        classical: classical codecs to code as references.
        all_intra: also code every frame of each model as an I-frame (``report["all_intra"]``) and
            give the BD metrics of its normal GOP coding against that (``report["bd_all_intra"]``:
            a negative BD-rate is what P-frame coding saves).
        bitstream: the learnt models' rates from real ``.lwdv`` files, measured on the frames
            decoded from them (``lwdvc eval --bitstream``).

    Returns:
        A JSON-able report dict (see :func:`write_report`).
    """
    if not models:
        raise BadArgumentError("no models to evaluate")
    if not sequences:
        raise BadArgumentError("no test sequences to evaluate")
    classical_labels = [codec.label for codec in classical]
    if len(set(classical_labels)) != len(classical_labels) or set(classical_labels) & set(models):
        raise BadArgumentError(f"labels must be unique across models and classical codecs: {list(models)} "
                         f"and {classical_labels}")
    anchor = anchor or next(iter(models))
    if anchor not in models and anchor not in classical_labels:
        raise BadArgumentError(f"BD reference {anchor!r} is not one of the models or classical codecs: "
                         f"{', '.join(list(models) + classical_labels)}")
    height, width = sequences[0][0].shape[-2:]
    report = {"settings": {"gop": settings.gop, "frames": settings.frames,
                           "sequences": [{"name": s.name, "height": s.original_size[0],
                                          "width": s.original_size[1], "frames": min(len(s), settings.frames)}
                                         for s in sequences],
                           "rate_measure": "bytes of .lwdv files, decoded (bits per original pixel)" if bitstream
                           else "estimated entropy of the rounded latents (bits per original pixel)"},
              "machine": machine_info(), "anchor": anchor, "models": {}, "bd": {},
              "classical": {}, "bd_classical": {}, "all_intra": {}, "bd_all_intra": {}}
    for codec in classical:
        report["classical"][codec.label] = {"settings": codec.describe(),
                                            "rd": classical_curve(codec, sequences, settings, progress=progress)}
    for label, codec in models.items():
        model_rates = list(rates) if rates is not None else list(range(codec.num_rates))
        entry = {"rd": rd_curve(codec, sequences, model_rates, settings, label=label, progress=progress,
                                bitstream=bitstream)}
        source = (mac_sources or {}).get(label)
        entry["decoder"] = decoder_cost(codec.inter, int(height), int(width), repeats=max(1, latency_repeats),
                                        macs_of=None if source is None else source.inter)
        if latency_repeats == 0:
            entry["decoder"]["latency"] = None
        report["models"][label] = entry
        if all_intra:
            intra_settings = GopSettings(gop=1, frames=settings.frames)
            intra = rd_curve(codec, sequences, model_rates, intra_settings, label=f"{label} all-intra",
                             progress=progress, bitstream=bitstream)
            report["all_intra"][label] = {"rd": intra}
            report["bd_all_intra"][label] = bd_metrics(intra, entry["rd"])
    anchor_entry = report["models"].get(anchor) or report["classical"][anchor]
    for label, entry in list(report["models"].items()) + list(report["classical"].items()):
        if label != anchor:
            report["bd"][label] = bd_metrics(anchor_entry["rd"], entry["rd"])
        if label != anchor and "decoder" in entry and "decoder" in anchor_entry:
            entry["decoder"]["mac_reduction"] = 1.0 - entry["decoder"]["macs"] / anchor_entry["decoder"]["macs"]
            if entry["decoder"]["latency"] and anchor_entry["decoder"]["latency"]:
                entry["decoder"]["speedup"] = (anchor_entry["decoder"]["latency"]["median_ms"]
                                               / entry["decoder"]["latency"]["median_ms"])
    for classical_label, classical_entry in report["classical"].items():
        report["bd_classical"][classical_label] = {label: bd_metrics(classical_entry["rd"], entry["rd"])
                                                   for label, entry in report["models"].items()}
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
             f"Rate: {s['rate_measure']}. Machine: {m['cores']} cores {m.get('cpu', m['machine'])}, "
             f"torch {m['torch']}.", "",
             "## Rate-distortion", "",
             "| model | rate point | bpp | PSNR RGB (dB) | PSNR Y (dB) | MS-SSIM |", "|---|---|---|---|---|---|"]
    for label, entry in report["models"].items():
        for p in entry["rd"]:
            lines.append(f"| {label} | {p['rate']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | "
                         f"{p['ms_ssim']:.4f} |")
    for label, entry in report.get("classical", {}).items():
        for p in entry["rd"]:
            lines.append(f"| {label} | CRF {p['crf']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | "
                         f"{p['ms_ssim']:.4f} |")
    if report.get("classical"):
        lines += ["", "Classical codecs: " + "; ".join(
            f"{label}: {e['settings']['encoder']} preset {e['settings']['preset']}, {e['settings']['pix_fmt']}, "
            f"no B-frames, an I-frame every {s['gop']} frames and no scene-cut I-frames, rate from the coded bytes "
            "(informational SEI left out)" for label, e in report["classical"].items()) + "."]
    lines += ["", "## P-frame decoder", "",
              "| model | MACs / frame (G) | MAC reduction | parameters | latency median (ms) | speed-up |",
              "|---|---|---|---|---|---|"]
    for label, entry in report["models"].items():
        d = entry["decoder"]
        latency = d["latency"]["median_ms"] if d.get("latency") else None
        reduction = d.get("mac_reduction")
        lines.append(f"| {label} | {d['macs'] / 1e9:.3f} | "
                     f"{_fmt(None if reduction is None else 100 * reduction, '.1f')}"
                     f"{'%' if reduction is not None else ''} | {d['parameters']:,} | {_fmt(latency, '.1f')} | "
                     f"{_fmt(d.get('speedup'), '.2f')} |")
    if report["bd"]:
        lines += ["", f"## BD metrics against {report['anchor']}", "",
                  "| model | BD-rate RGB (%) | BD-PSNR RGB (dB) | BD-rate Y (%) | BD-PSNR Y (dB) |",
                  "|---|---|---|---|---|"]
        for label, bd in report["bd"].items():
            lines.append(f"| {label} | {_fmt(bd['bd_rate'], '+.2f')} | {_fmt(bd['bd_psnr'], '+.3f')} | "
                         f"{_fmt(bd['bd_rate_y'], '+.2f')} | {_fmt(bd['bd_psnr_y'], '+.3f')} |")
    if report.get("all_intra"):
        lines += ["", "## P-frame coding against all-intra coding (same model, every frame an I-frame)", "",
                  "| model | all-intra bpp | all-intra PSNR RGB (dB) | BD-rate RGB (%) | BD-PSNR RGB (dB) |",
                  "|---|---|---|---|---|"]
        for label, entry in report["all_intra"].items():
            bd = report["bd_all_intra"][label]
            points = ", ".join(f"{p['bpp']:.4f}" for p in entry["rd"])
            quality = ", ".join(f"{p['psnr']:.2f}" for p in entry["rd"])
            lines.append(f"| {label} | {points} | {quality} | {_fmt(bd['bd_rate'], '+.2f')} | "
                         f"{_fmt(bd['bd_psnr'], '+.3f')} |")
    lines += _gop_drift_lines(report)
    for classical_label, table in report.get("bd_classical", {}).items():
        if classical_label == report["anchor"]:
            continue
        lines += ["", f"## BD metrics against {classical_label}", "",
                  "| model | BD-rate RGB (%) | BD-PSNR RGB (dB) | BD-rate Y (%) | BD-PSNR Y (dB) |",
                  "|---|---|---|---|---|"]
        for label, bd in table.items():
            lines.append(f"| {label} | {_fmt(bd['bd_rate'], '+.2f')} | {_fmt(bd['bd_psnr'], '+.3f')} | "
                         f"{_fmt(bd['bd_rate_y'], '+.2f')} | {_fmt(bd['bd_psnr_y'], '+.3f')} |")
    if report["models"]:
        first = next(iter(report["models"].values()))["decoder"]
        lines += ["", f"Decoder cost at the padded size {first['width']}x{first['height']}; latency: decoder "
                      f"modules only, median of {first['latency']['repeats'] if first.get('latency') else 0} runs, "
                      f"{first['latency']['threads'] if first.get('latency') else '-'} threads."]
    return "\n".join(lines) + "\n"


def _gop_drift_lines(report: dict) -> list[str]:
    """Per model and rate point: PSNR of the first and the last P-frame of each GOP (first sequence)."""
    gop = report["settings"]["gop"]
    if gop < 3:
        return []
    lines = ["", f"## Quality over a GOP (first sequence, mean over its GOPs of {gop} frames)", "",
             "| model | rate point | I-frame PSNR | first P-frame PSNR | last P-frame PSNR | P-frame bpp |",
             "|---|---|---|---|---|---|"]
    for label, entry in list(report["models"].items()) + list(report.get("classical", {}).items()):
        for p in entry["rd"]:
            frames = p["sequences"][0]["per_frame"]
            kinds, values = frames["type"], frames["psnr"]
            firsts = [values[i + 1] for i, k in enumerate(kinds[:-1]) if k == "I" and kinds[i + 1] == "P"]
            lasts = [values[i] for i, k in enumerate(kinds) if k == "P" and i % gop == gop - 1]  # full GOPs
            intra = [v for v, k in zip(values, kinds) if k == "I"]
            p_bpp = [b for b, k in zip(frames["bpp"], kinds) if k == "P"]
            name = f"CRF {p['crf']}" if "crf" in p else str(p["rate"])
            lines.append(f"| {label} | {name} | {_fmt(sum(intra) / len(intra) if intra else None, '.2f')} | "
                         f"{_fmt(sum(firsts) / len(firsts) if firsts else None, '.2f')} | "
                         f"{_fmt(sum(lasts) / len(lasts) if lasts else None, '.2f')} | "
                         f"{_fmt(sum(p_bpp) / len(p_bpp) if p_bpp else None, '.4f')} |")
    return lines


def write_report(report: dict, out_dir: str | os.PathLike, name: str = "report",
                 title: str = "Rate-distortion evaluation") -> dict[str, str]:
    """Write ``<name>.json``, ``<name>.md``, the RD plot ``<name>_rd.png`` and the per-frame plot
    ``<name>_frames.png`` (each model's middle rate point, first sequence) into ``out_dir``.

    Returns:
        ``{"json", "markdown", "plot", "frames_plot"}`` paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, f"{name}.json"), "markdown": os.path.join(out_dir, f"{name}.md"),
             "plot": os.path.join(out_dir, f"{name}_rd.png"),
             "frames_plot": os.path.join(out_dir, f"{name}_frames.png")}
    with open(paths["json"], "w") as file:
        json.dump(report, file, indent=1)
    with open(paths["markdown"], "w") as file:
        file.write(markdown_report(report, title))
    entries = list(report["models"].items()) + list(report.get("classical", {}).items())
    curves = {label: curve_arrays(entry["rd"]) for label, entry in entries}
    curves.update({f"{label} all-intra": curve_arrays(entry["rd"])
                   for label, entry in report.get("all_intra", {}).items()})
    notes = {label: f"BD-PSNR {bd['bd_psnr']:+.2f} dB" for label, bd in report["bd"].items()
             if bd.get("bd_psnr") is not None}
    plot_rd_curves(curves, paths["plot"], title=title, annotations=notes)
    series = {}
    for label, entry in entries:
        point = entry["rd"][len(entry["rd"]) // 2]
        frames = point["sequences"][0]["per_frame"]
        name = f"CRF {point['crf']}" if "crf" in point else f"rate {point['rate']}"
        series[f"{label} {name}"] = {"psnr": frames["psnr"], "bpp": frames["bpp"]}
    plot_per_frame(series, paths["frames_plot"], title=f"{title}: per frame")
    return paths
