"""``lwdvc ablate``: the paper's Table 2 on our data - STE, GD, STE + ALD, GD + ALD.

Every variant prunes the same teacher to the same MAC budget with the same steps, data order and
seed; reported per variant: BD-PSNR / BD-rate against the teacher on the test clip, the final
(compacted) MAC reduction, mask flips over the run, and training-loss / MAC-reduction curves.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from lwdvc.commands.common import (
    DEFAULT_MODEL,
    add_gop_options,
    add_sequence_options,
    gop_settings,
    load_codec,
    make_output_folder,
    test_sequences,
)
from lwdvc.commands.prune import add_prune_options, prune_config

HELP = "ablation of gradient modes and distillation (STE, GD, STE+ALD, GD+ALD) at one MAC budget"
VARIANTS = (("STE", "ste", False), ("GD", "gd", False), ("STE + ALD", "ste", True), ("GD + ALD", "gd", True))


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("ablate", help=HELP, description=HELP)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"dense teacher (default {DEFAULT_MODEL})")
    parser.add_argument("--out", default="lwdvc-ablate", help="output folder (default ./lwdvc-ablate)")
    parser.add_argument("--variants", nargs="+", choices=[v[0].replace(" ", "") for v in VARIANTS],
                        help="subset of STE GD STE+ALD GD+ALD (default: all four)")
    add_prune_options(parser, steps=600, crop=64)
    add_sequence_options(parser)
    add_gop_options(parser, gop=12, frames=12)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _mean_offsets(anchor: list[dict], points: list[dict]) -> tuple[float, float]:
    """Mean PSNR difference (dB) and mean relative bpp difference (%) at the same rate points."""
    by_rate = {p["rate"]: p for p in anchor}
    pairs = [(by_rate[p["rate"]], p) for p in points if p["rate"] in by_rate]
    d_psnr = sum(q["psnr"] - a["psnr"] for a, q in pairs) / len(pairs)
    d_bpp = sum(q["bpp"] / a["bpp"] - 1.0 for a, q in pairs) / len(pairs)
    return d_psnr, 100.0 * d_bpp


def markdown_table(rows: list[dict], settings: dict, anchor: list[dict]) -> str:
    """Table 2: BD metrics (n/a where the curves do not overlap) and the mean offsets per rate point."""
    lines = ["# Ablation: gradient mode and distillation at one MAC budget", "",
             f"Teacher {settings['model']}; target {100 * settings['target']:.0f}% fewer P-frame decoder MACs; "
             f"{settings['steps']} fine-tuning steps per variant; test: {settings['sequences']} "
             f"(GOP {settings['gop']}, {settings['frames']} frames, every rate point). BD metrics are n/a "
             "where the two RD curves do not overlap; the mean offsets compare equal rate points.", "",
             "| variant | BD-PSNR RGB / Y vs teacher (dB) | BD-rate vs teacher (%) | mean PSNR offset (dB) | "
             "mean bpp offset (%) | MAC reduction (compacted) | mask flips (total) | final loss |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bd_psnr = " / ".join("n/a" if r.get(k) is None else f"{r[k]:+.3f}" for k in ("bd_psnr", "bd_psnr_y"))
        bd_rate = "n/a" if r["bd_rate"] is None else f"{r['bd_rate']:+.2f}"
        d_psnr, d_bpp = _mean_offsets(anchor, r["rd"])
        lines.append(f"| {r['variant']} | {bd_psnr} | {bd_rate} | {d_psnr:+.2f} | {d_bpp:+.1f} | "
                     f"{100 * r['mac_reduction']:.1f}% | {r['mask_flips_total']:.0f} | {r['final_loss']:.4f} |")
    return "\n".join(lines) + "\n"


def _write_text(path: str, text: str) -> None:
    """Replace ``path`` atomically (temporary file + rename)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as file:
        file.write(text)
    os.replace(tmp, path)


def _write_outputs(out: str, report: dict, curves: dict, text: str) -> None:
    """ablation.json / .md, the training curves and the RD plot of the variants done so far."""
    from lwdvc.plots import plot_rd_curves
    from lwdvc.prune import plot_run_comparison

    _write_text(os.path.join(out, "ablation.json"), json.dumps(report, indent=1))
    _write_text(os.path.join(out, "ablation.md"), text)
    plot_run_comparison(report["histories"], os.path.join(out, "curves.png"), title="training loss and sparsity")
    plot_rd_curves(curves, os.path.join(out, "ablation_rd.png"), title="ablation: RD on the test clip")


def run(args: argparse.Namespace) -> int:
    from lwdvc.eval import bd_metrics, rd_curve
    from lwdvc.train.finetune import prune_codec

    start = time.perf_counter()
    progress = not args.no_progress
    teacher = load_codec(args.model)
    settings = gop_settings(args)
    sequences = test_sequences(args, max_frames=settings.frames)
    rates = list(range(teacher.num_rates))
    wanted = set(args.variants or [v[0].replace(" ", "") for v in VARIANTS])
    anchor = rd_curve(teacher, sequences, rates, settings, label="teacher", progress=progress)
    rows, histories, curves = [], {}, {"teacher": ([p["bpp"] for p in anchor], [p["psnr"] for p in anchor])}
    make_output_folder(args.out)
    info = {"model": args.model, "target": args.target, "steps": args.steps, "gop": settings.gop,
            "frames": settings.frames, "sequences": ", ".join(s.name for s in sequences)}
    text, report = "", {"seconds": 0.0}
    for label, mode, ald in VARIANTS:
        if label.replace(" ", "") not in wanted:
            continue
        result = prune_codec(teacher, prune_config(args, mode, ald), progress=progress)
        points = rd_curve(result["compacted"], sequences, rates, settings, label=label, progress=progress)
        bd = bd_metrics(anchor, points)
        last = result["history"][-1]
        rows.append({"variant": label, "mode": mode, "ald": ald, "bd_psnr": bd["bd_psnr"], "bd_rate": bd["bd_rate"],
                     "bd_psnr_y": bd["bd_psnr_y"], "mac_reduction": result["compaction"]["mac_reduction"],
                     "mask_flips_total": last["mask_flips_total"], "final_loss": last["loss"], "rd": points})
        histories[label] = result["history"]
        curves[label] = ([p["bpp"] for p in points], [p["psnr"] for p in points])
        # written after every variant, so a stopped run keeps the variants it finished
        report = {"settings": info, "teacher_rd": anchor, "variants": rows, "histories": histories,
                  "seconds": time.perf_counter() - start}
        text = markdown_table(rows, info, anchor)
        _write_outputs(args.out, report, curves, text)
        print(f"{label}: BD-PSNR {rows[-1]['bd_psnr']} dB ({len(rows)} of {len(wanted)} variants, "
              f"{report['seconds'] / 60:.1f} min)", flush=True)
    print(text)
    print(f"wrote ablation.json, ablation.md, curves.png and ablation_rd.png in {args.out} "
          f"({report['seconds'] / 60:.1f} min)")
    return 0
