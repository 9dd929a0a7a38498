"""``lwdvc train``: rate-distortion training of an I-frame + P-frame codec (resumable, torchrun-ready)."""
from __future__ import annotations

import argparse
import dataclasses

from lwdvc.train.config import PRECISIONS, STAGES, TrainConfig

HELP = "train a codec (I-frame + P-frame) for rate-distortion; run under torchrun for data parallelism"

# TrainConfig fields exposed as options: (field, type, help)
_OPTIONS = (
    ("family", str, "codec family: dcvc_hem (variable rate), dcvc or fvc"),
    ("width", float, "channel width factor of the P-frame codec (1.0 = official size)"),
    ("intra_width", float, "width factor of the I-frame codec (default: --width)"),
    ("anchors", int, "rate points of a variable-rate codec"),
    ("stage", str, f"what to train: {', '.join(STAGES)}"),
    ("frames", int, "frames per training group (an I-frame, then P-frames)"),
    ("crop", int, "crop side in pixels (multiple of 16)"),
    ("batch_size", int, "global batch size (split over processes)"),
    ("steps", int, "optimisation steps in total"),
    ("lr", float, "Adam learning rate"),
    ("lr_decay", float, "learning-rate factor applied from --lr-decay-at on"),
    ("lr_decay_at", float, "fraction of the steps after which the learning rate decays"),
    ("grad_clip", float, "max gradient norm (0: no clipping)"),
    ("rate_warmup", float, "fraction of the steps over which the rate term's weight ramps from 0 to 1"),
    ("rate_delay", float, "fraction of the steps before that ramp, with the rate term off (1: distortion only)"),
    ("seed", int, "random seed"),
    ("max_side", int, "downscale training videos so their longest side is at most this"),
    ("max_frames", int, "use at most this many frames of each training video"),
    ("checkpoint_every", int, "steps between checkpoints"),
    ("keep_every", int, "also keep the checkpoint of every this many steps as checkpoint_step<N>.pt (0: none)"),
    ("log_every", int, "steps between loss-history records"),
    ("threads", int, "torch CPU threads per process (0: torch default)"),
    ("init", str, "start from the model weights of a checkpoint or pretrained:<name>"),
    ("precision", str, f"forward-pass precision: {', '.join(PRECISIONS)} (bfloat16 autocast)"),
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help=HELP, description=HELP)
    parser.add_argument("--out", required=True, help="output folder (checkpoint.pt is kept there)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="start afresh and replace <out>/checkpoint.pt (without it, an existing one is refused)")
    parser.add_argument("--data", nargs="+", default=[], metavar="VIDEO",
                        help="training videos / YUV files / PNG folders, or embedded:clips and embedded:stills "
                        "(photographs of scikit-image moved by a camera path) (default: the embedded clips)")
    parser.add_argument("--lambdas", type=float, nargs="+", help="RD lambda per rate point")
    parser.add_argument("--train-modules", nargs="+", metavar="NAME",
                        help="stages residual and inter: train only these submodules of the P-frame codec "
                        "(e.g. contextual_encoder contextual_decoder recon_generation_net)")
    parser.add_argument("--fresh-modules", nargs="+", metavar="NAME",
                        help="submodules of the P-frame codec that start from fresh weights (this --seed's) "
                        "instead of --init's")
    defaults = TrainConfig()
    for name, kind, text in _OPTIONS:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None,
                            help=f"{text} (default: {getattr(defaults, name)})")
    parser.add_argument("--export", metavar="PATH",
                        help="also write the trained model as PATH.json + PATH.safetensors")
    parser.add_argument("--export-dtype", default="float16", choices=("float16", "bfloat16", "float32"))
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the options describe (unset options keep the defaults)."""
    values = {name: getattr(args, name) for name, _, _ in _OPTIONS if getattr(args, name) is not None}
    if args.lambdas:
        values["lambdas"] = args.lambdas
    if args.data:
        values["data"] = args.data
    for name in ("train_modules", "fresh_modules"):
        if getattr(args, name):
            values[name] = getattr(args, name)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def run(args: argparse.Namespace) -> int:
    import os

    from lwdvc.train.loop import train

    config = config_from_args(args)
    result = train(config, args.out, resume=args.resume, progress=not args.no_progress,
                   overwrite=args.overwrite)
    last = result["history"][-1] if result["history"] else None
    if int(os.environ.get("RANK", "0")) == 0:
        summary = (f"loss {last['loss']:.4f}, bpp {last['bpp']:.4f}, PSNR {last['psnr']:.2f} dB"
                   if last else "no steps run")
        print(f"trained {result['step']} steps; {summary}; checkpoint {result['checkpoint']}")
        if args.export:
            from lwdvc.models.pretrained import save_weights

            paths = save_weights(result["codec"], args.export, dtype=args.export_dtype,
                                 training={"config": dataclasses.asdict(config), "history": result["history"]})
            print(f"exported {paths[0]} and {paths[1]}")
    return 0
