"""``lwdvc prune``: prune and compact a trained codec's P-frame decoder to a MAC budget."""
from __future__ import annotations

import argparse
import os

from lwdvc.commands.common import DEFAULT_MODEL, load_codec, make_output_folder

HELP = "prune a codec's P-frame decoder (gradient decay + layer-wise distillation) and compact it"


def add_prune_options(parser: argparse.ArgumentParser, steps: int = 300, crop: int = 96) -> None:
    """Options shared by prune, demo and ablate."""
    parser.add_argument("--target", type=float, default=0.65, help="decoder MAC reduction (default 0.65)")
    parser.add_argument("--steps", type=int, default=steps, help=f"fine-tuning steps (default {steps})")
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate (default 3e-4)")
    parser.add_argument("--ramp", type=float, default=0.4,
                        help="fraction of the steps over which the MAC target ramps up (default 0.4)")
    parser.add_argument("--crop", type=int, default=crop, help=f"training crop side (default {crop})")
    parser.add_argument("--batch-size", type=int, default=4, help="batch size (default 4)")
    parser.add_argument("--train-max-side", type=int, default=320, help="downscale training clips (default 320)")
    parser.add_argument("--train-max-frames", type=int, default=60, help="frames per training clip (default 60)")
    parser.add_argument("--data", nargs="+", default=[], metavar="VIDEO",
                        help="training videos (default: embedded clips)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--train-p-frames", type=int, default=2,
                        help="P-frames per training GOP, each coded from the previous decoded one (>= 2, default 2)")
    parser.add_argument("--round-to", type=int, default=1,
                        help="every pruned group keeps a multiple of this many channels "
                             "(within the MAC target; 8 or 16 suit CPU SIMD widths)")
    parser.add_argument("--selection", default="budget", choices=("budget", "threshold"),
                        help="mask selection: budget (global top-k meeting the MAC target, default) or threshold "
                             "(learnable per-group thresholds with a sigmoid sparsity proxy, as in the paper)")
    parser.add_argument("--threshold-lr", type=float, default=0.05,
                        help="learning rate of the thresholds (--selection threshold; default 0.05)")
    parser.add_argument("--keep-dense", nargs="+", default=[], metavar="MODULE",
                        help="P-frame decoder modules never pruned (their MACs still count in the target's dense "
                             "total), e.g. mv_decoder")


def prune_config(args: argparse.Namespace, mode: str, ald: bool):
    from lwdvc.train.finetune import PruneConfig

    return PruneConfig(target=args.target, mode=mode, ald=ald, steps=args.steps, lr=args.lr, ramp=args.ramp,
                       crop=args.crop,
                       batch_size=args.batch_size, max_side=args.train_max_side, max_frames=args.train_max_frames,
                       data=list(args.data), seed=args.seed, threads=args.threads, round_to=args.round_to,
                       keep_dense=list(args.keep_dense), selection=args.selection,
                       threshold_lr=args.threshold_lr,
                       frames=1 + args.train_p_frames)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("prune", help=HELP, description=HELP)
    parser.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"dense codec (default {DEFAULT_MODEL})")
    parser.add_argument("--out", default="lwdvc-prune", help="output folder (default ./lwdvc-prune)")
    parser.add_argument("--mode", default="gd", choices=("gd", "ste", "mask", "wd"), help="pruned-weight gradient mode")
    parser.add_argument("--no-ald", action="store_true", help="no layer-wise distillation")
    add_prune_options(parser)
    parser.add_argument("--no-progress", action="store_true")
    return parser


def run(args: argparse.Namespace) -> int:
    from lwdvc.models.pretrained import save_compacted
    from lwdvc.prune import JsonlLogger, plot_training_curves
    from lwdvc.train.finetune import prune_codec
    from lwdvc.train.prune_state import save_prune_state

    teacher = load_codec(args.model)
    config = prune_config(args, args.mode, not args.no_ald)
    make_output_folder(args.out)
    logger = JsonlLogger(os.path.join(args.out, "metrics.jsonl"))
    try:
        result = prune_codec(teacher, config, progress=not args.no_progress, log=logger.log)
    finally:
        logger.close()
    save_prune_state(os.path.join(args.out, "prune_state.pt"), result["student"], result["pruner"], config)
    paths = save_compacted(result["compacted"], os.path.join(args.out, "pruned"),
                           description=f"{args.model} pruned ({config.mode}{' + ALD' if config.ald else ''})",
                           training={"prune_config": result["config"]})
    plot_training_curves(result["history"], os.path.join(args.out, "curves.png"), title="pruning fine-tune")
    c = result["compaction"]
    print(f"decoder MACs {c['dense_macs'] / 1e6:.1f} M -> {c['macs'] / 1e6:.1f} M "
          f"({100 * c['mac_reduction']:.1f}% fewer, at the {config.analysis_size[0]}x{config.analysis_size[1]} "
          f"analysis size); compacted model {paths[0]}")
    return 0
