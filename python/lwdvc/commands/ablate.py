"""``lwdvc ablate``: the paper's Table 2 on our data - STE, GD, STE + ALD, GD + ALD.

Every run prunes the same teacher to the same MAC budget with the same steps and data; the runs
are every variant x mask selection (``--selections``) x seed (``--seeds``). Reported per run and
as mean +- spread over the seeds: BD-PSNR / BD-rate against the teacher on the test clip, the
final (compacted) MAC reduction, mask flips, and training-loss / MAC-reduction curves.

The report (``ablation.json`` / ``.md`` and the plots) is replaced atomically after every finished
run. Started again on the same folder with the same settings, the command resumes: finished runs
are kept, the others run. Other settings on a folder that holds a report are refused unless
``--overwrite``.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from lwdvc.commands.ablation_report import markdown_tables, run_key
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
from lwdvc.errors import BadArgumentError, InputFileError

HELP = "ablation of gradient modes and distillation (STE, GD, STE+ALD, GD+ALD) at one MAC budget"
#: What a resumable ablation.json holds.
REPORT_KEYS = frozenset({"settings", "teacher_rd", "variants", "histories"})
VARIANTS = (("STE", "ste", False), ("GD", "gd", False), ("STE + ALD", "ste", True), ("GD + ALD", "gd", True))


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("ablate", help=HELP, description=HELP)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"dense teacher (default {DEFAULT_MODEL})")
    parser.add_argument("--out", default="lwdvc-ablate", help="output folder (default ./lwdvc-ablate)")
    parser.add_argument("--variants", nargs="+", choices=[v[0].replace(" ", "") for v in VARIANTS],
                        help="subset of STE GD STE+ALD GD+ALD (default: all four)")
    add_prune_options(parser, steps=600, crop=64)
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds of every setting (default: --seed)")
    parser.add_argument("--selections", nargs="+", choices=("budget", "threshold"),
                        help="mask selections to run (default: --selection)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard a report of other settings in --out instead of refusing")
    add_sequence_options(parser)
    add_gop_options(parser, gop=12, frames=12)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _write_outputs(out: str, report: dict, curves: dict, text: str) -> None:
    """ablation.json / .md, the training curves (first seed of each setting) and the RD plot."""
    from lwdvc.checkpoint import write_text_atomic
    from lwdvc.plots import plot_rd_curves
    from lwdvc.prune import plot_run_comparison

    write_text_atomic(os.path.join(out, "ablation.json"), json.dumps(report, indent=1))
    write_text_atomic(os.path.join(out, "ablation.md"), text)
    first_seed = {}
    for row in report["variants"]:
        first_seed.setdefault((row["variant"], row["selection"]), row["seed"])
    histories = {f"{variant} ({selection})": report["histories"][run_key(variant, selection, seed)]
                 for (variant, selection), seed in first_seed.items()}
    plot_run_comparison(histories, os.path.join(out, "curves.png"), title="training loss and sparsity")
    plot_rd_curves(curves, os.path.join(out, "ablation_rd.png"), title="ablation: RD on the test clip")


def _settings(args: argparse.Namespace, settings, sequences) -> dict:
    """Everything a run's result depends on besides its variant, selection and seed."""
    skip = {"variants", "seeds", "selections", "seed", "selection", "out", "no_progress", "overwrite",
            "command", "func", "debug", "threads"}
    options = {k: v for k, v in sorted(vars(args).items()) if k not in skip and not callable(v)}
    return {"model": args.model, "target": args.target, "steps": args.steps, "gop": settings.gop,
            "frames": settings.frames, "sequences": ", ".join(s.name for s in sequences), "options": options}


def _previous_report(out: str, info: dict, overwrite: bool) -> dict | None:
    """The report in ``out`` to resume, None to start afresh.

    Raises:
        BadArgumentError: ``out`` holds a report of other settings and ``overwrite`` is not set.
        InputFileError: the report there is not readable JSON of the expected shape.
    """
    path = os.path.join(out, "ablation.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as file:
            report = json.load(file)
        problem = None if isinstance(report, dict) else "not a JSON object"
    except (OSError, ValueError) as error:
        problem = str(error)
    if problem is None:
        missing = sorted(REPORT_KEYS - set(report))
        problem = f"no {', '.join(missing)}" if missing else None
    if problem is not None:
        if overwrite:
            return None
        raise InputFileError(f"{path} is not an ablation report this command can resume ({problem}); "
                             "pass --overwrite to replace it or choose another --out")
    if report["settings"] == info:
        return report
    if overwrite:
        return None
    raise BadArgumentError(f"{path} holds an ablation of other settings; resume it with the same options, "
                           "pass --overwrite to replace it, or choose another --out")


def _planned_runs(args: argparse.Namespace) -> list[tuple[str, str, bool, str, int]]:
    """(variant label, gradient mode, ALD, selection, seed) of every run, in order."""
    wanted = set(args.variants or [v[0].replace(" ", "") for v in VARIANTS])
    selections = args.selections or [args.selection]
    seeds = args.seeds if args.seeds is not None else [args.seed]
    return [(label, mode, ald, selection, seed) for selection in selections for label, mode, ald in VARIANTS
            if label.replace(" ", "") in wanted for seed in seeds]


def _curves(report: dict) -> dict:
    curves = {"teacher": ([p["bpp"] for p in report["teacher_rd"]], [p["psnr"] for p in report["teacher_rd"]])}
    for row in report["variants"]:
        curves[run_key(row["variant"], row["selection"], row["seed"])] = (
            [p["bpp"] for p in row["rd"]], [p["psnr"] for p in row["rd"]])
    return curves


def run(args: argparse.Namespace) -> int:
    from lwdvc.eval import bd_metrics, rd_curve
    from lwdvc.train.finetune import prune_codec

    start = time.perf_counter()
    progress = not args.no_progress
    teacher = load_codec(args.model)
    settings = gop_settings(args)
    sequences = test_sequences(args, max_frames=settings.frames)
    rates = list(range(teacher.num_rates))
    make_output_folder(args.out)
    info = _settings(args, settings, sequences)
    report = _previous_report(args.out, info, args.overwrite)
    if report is None:
        anchor = rd_curve(teacher, sequences, rates, settings, label="teacher", progress=progress)
        report = {"settings": info, "teacher_rd": anchor, "variants": [], "histories": {}, "seconds": 0.0}
    done = {run_key(r["variant"], r["selection"], r["seed"]) for r in report["variants"]}
    planned = _planned_runs(args)
    spent = float(report.get("seconds", 0.0))
    if done:
        print(f"resuming {args.out}: {len(done)} finished run(s) kept", flush=True)
    for index, (label, mode, ald, selection, seed) in enumerate(planned, 1):
        key = run_key(label, selection, seed)
        if key in done:
            continue
        vars(args).update(seed=seed, selection=selection)
        result = prune_codec(teacher, prune_config(args, mode, ald), progress=progress)
        points = rd_curve(result["compacted"], sequences, rates, settings, label=key, progress=progress)
        bd = bd_metrics(report["teacher_rd"], points)
        last = result["history"][-1]
        report["variants"].append({
            "variant": label, "mode": mode, "ald": ald, "selection": selection, "seed": seed,
            "bd_psnr": bd["bd_psnr"], "bd_rate": bd["bd_rate"], "bd_psnr_y": bd["bd_psnr_y"],
            "mac_reduction": result["compaction"]["mac_reduction"],
            "mask_flips_total": last["mask_flips_total"], "final_loss": last["loss"], "rd": points})
        report["histories"][key] = result["history"]
        report["seconds"] = spent + time.perf_counter() - start
        # written after every run, so a stopped ablation keeps (and later resumes from) the runs it finished
        _write_outputs(args.out, report, _curves(report), markdown_tables(report["variants"], info,
                                                                          report["teacher_rd"]))
        print(f"{key}: BD-PSNR {report['variants'][-1]['bd_psnr']} dB (run {index} of {len(planned)}, "
              f"{report['seconds'] / 60:.1f} min)", flush=True)
    text = markdown_tables(report["variants"], info, report["teacher_rd"]) if report["variants"] else ""
    print(text)
    print(f"wrote ablation.json, ablation.md, curves.png and ablation_rd.png in {args.out} "
          f"({report['seconds'] / 60:.1f} min)")
    return 0
