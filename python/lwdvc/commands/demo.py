"""``lwdvc demo``: the whole method on the embedded default in a few minutes on a CPU.

Loads the shipped teacher (DCVC-HEM at width 0.25), prunes its P-frame decoder with gradient decay
+ adaptive layer-wise distillation to 65 % fewer decoder MACs, compacts it (verified against the
masked model), evaluates teacher and compacted student at every rate point on the held-out clip
next to x264 (``--anchor``) and writes demo.json, demo.md, demo_rd.png, curves.png and the compacted model into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import time

from lwdvc.commands.common import (
    DEFAULT_MODEL,
    add_classical_options,
    add_gop_options,
    add_sequence_options,
    classical_codecs,
    gop_settings,
    load_codec,
    make_output_folder,
    test_sequences,
)
from lwdvc.commands.prune import add_prune_options, prune_config

HELP = ("prune the shipped teacher to a 65 percent decoder-MAC reduction, compact it and compare RD "
        "(about 12 minutes on 2 cores)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("demo", help=HELP, description=HELP)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"dense teacher (default {DEFAULT_MODEL})")
    parser.add_argument("--out", default="lwdvc-demo", help="output folder (default ./lwdvc-demo)")
    add_prune_options(parser, steps=600, crop=64)
    add_sequence_options(parser)
    add_gop_options(parser, gop=6, frames=12)
    add_classical_options(parser)
    parser.set_defaults(anchor=["x264"])
    parser.add_argument("--latency-repeats", type=int, default=10, help="timed decoder runs (median)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from lwdvc.eval import evaluate_models, markdown_report, write_report
    from lwdvc.models.pretrained import save_compacted
    from lwdvc.prune import plot_training_curves
    from lwdvc.train.finetune import prune_codec

    start = time.perf_counter()
    progress = not args.no_progress
    print(f"[1/4] loading the teacher {args.model}", flush=True)
    classical = classical_codecs(args)
    teacher = load_codec(args.model)
    settings = gop_settings(args)
    sequences = test_sequences(args, max_frames=settings.frames)
    config = prune_config(args, mode="gd", ald=True)
    print(f"[2/4] pruning the P-frame decoder to {100 * config.target:.0f}% fewer MACs with gradient decay + "
          f"layer-wise distillation ({config.steps} steps)", flush=True)
    result = prune_codec(teacher, config, progress=progress)
    compaction = result["compaction"]
    print(f"[3/4] compacted and verified: decoder MACs {compaction['dense_macs'] / 1e6:.1f} M -> "
          f"{compaction['macs'] / 1e6:.1f} M ({100 * compaction['mac_reduction']:.1f}% fewer)", flush=True)
    make_output_folder(args.out)
    save_compacted(result["compacted"], os.path.join(args.out, "pruned"), description="demo: GD + ALD",
                   training={"prune_config": result["config"]})
    curves = plot_training_curves(result["history"], os.path.join(args.out, "curves.png"),
                                  title="GD + ALD pruning fine-tune")
    with open(os.path.join(args.out, "metrics.jsonl"), "w") as file:
        for row in result["history"]:
            file.write(json.dumps(row) + "\n")
    print(f"[4/4] evaluating teacher and pruned codec on {', '.join(s.name for s in sequences)} "
          f"(GOP {settings.gop}, {settings.frames} frames, {teacher.num_rates} rate points)", flush=True)
    models = {"teacher (dense)": teacher, "pruned GD+ALD (compacted)": result["compacted"]}
    report = evaluate_models(models, sequences, settings, latency_repeats=args.latency_repeats, progress=progress,
                             classical=classical)
    report["pruning"] = {"config": result["config"], "compaction": {k: v for k, v in compaction.items()
                                                                    if k != "modules"},
                         "compaction_modules": {k: list(v) for k, v in compaction["modules"].items()},
                         "final_metrics": {k: v for k, v in result["history"][-1].items()
                                           if not k.startswith(("sparsity/", "ald_"))}}
    report["seconds"] = time.perf_counter() - start
    paths = write_report(report, args.out, name="demo", title="lwdvc demo: dense vs pruned (GD + ALD)")
    print(markdown_report(report, title="lwdvc demo: dense vs pruned (GD + ALD)"))
    print(f"Pruned-scope MAC reduction (analysis size): {100 * compaction['mac_reduction']:.1f}%")
    print(f"wrote {paths['json']}, {paths['markdown']}, {paths['plot']} and {curves} "
          f"in {report['seconds'] / 60:.1f} min")
    return 0
