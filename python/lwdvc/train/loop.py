"""Rate-distortion training of a video codec with exact resume and data parallelism.

``train(config, out_dir)`` trains a :class:`~lwdvc.models.video_codec.VideoCodec` and keeps one
checkpoint, ``<out_dir>/checkpoint.pt``, written atomically every ``checkpoint_every`` steps and
at the end (and, with ``keep_every``, a copy of it every ``keep_every`` steps as
``checkpoint_step<step>.pt``). A folder that already holds one is refused unless the run resumes it or
``overwrite=True`` replaces it. ``resume=True`` continues from it and reproduces the uninterrupted run: the model,
optimiser, scheduler, every rank's torch/numpy/python RNG state and the sampler position (a
function of the step) are restored; settings that differ from the checkpoint's (lr, seed, crop...)
are listed in one warning line on stderr, and the run continues with the given ones. Run it
under ``torchrun --nproc_per_node K`` for K data-parallel processes (gloo on CPU). A non-finite
loss or gradient, non-finite values met in the forward pass (offsets reaching a deformable convolution,
:class:`~lwdvc_kernels.ops.deform_conv2d_torchvision.NonFiniteOffsetError`, or parameters of a
``torch.distributions`` distribution, whose validation raises ``ValueError``) or model weights
that are not all finite when a checkpoint is due stop the run with :class:`TrainingDiverged`
and leave the last good checkpoint in place: a checkpoint is only written with finite weights.
"""
from __future__ import annotations

import copy
import json
import os
import random
import sys
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from lwdvc.checkpoint import (
    FORMAT,
    VERSION,
    CheckpointError,
    check_codec_matches,
    checkpoint_codec,
    copy_atomic,
    load_checkpoint,
    rng_state,
    save_atomic,
    set_rng_state,
)
from lwdvc.errors import BadArgumentError, ConfigError, UserError
from lwdvc.metrics import psnr_from_mse
from lwdvc.models.video_codec import VideoCodec, weights_fit
from lwdvc.train.config import TrainConfig
from lwdvc.train.data import training_dataset
from lwdvc.train.distributed import DistContext
from lwdvc.train.objective import RDObjective, check_motion_stage
from lwdvc.train.sampler import StepSampler
from lwdvc_kernels.ops.deform_conv2d_torchvision import NonFiniteOffsetError

__all__ = ["train", "TrainingDiverged", "CHECKPOINT_NAME", "load_init_weights", "guarded_forward"]

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingDiverged(UserError, RuntimeError):
    """The loss, the gradient, the weights or values in the forward pass became NaN/inf; the last
    good checkpoint was kept."""


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def load_init_weights(codec: VideoCodec, source: str) -> None:
    """Copy model weights from a training checkpoint or ``pretrained:<name>`` into ``codec``.

    Weights of a family go into its frame-skip family too (``FRAME_SKIP_OF``); the P-frame codec
    then starts as a motion-compensated copy (its frame generator's last convolution at zero).

    ``source`` may also be comma-separated ``PART=SOURCE`` items (PART "intra" or "inter"), each
    loading only that part of the codec from its source; the other part's width in the source
    does not matter (an I-frame codec of width 0.5 can join a P-frame codec of width 0.25).

    Raises:
        CheckpointError: the source holds another codec (family, widths or rate points).
        ConfigError: an unknown part.
    """
    if "=" in source:
        for item in source.split(","):
            part, _, path = item.partition("=")
            if part not in PART_WIDTH or not path:
                raise ConfigError(f"init item {item!r}: give PART=SOURCE with PART 'intra' or 'inter'")
            other_width = PART_WIDTH["inter" if part == "intra" else "intra"]
            source_config, _ = _read_source(path)
            donor = VideoCodec.from_config({**codec.config, other_width: source_config.get(other_width)})
            load_init_weights(donor, path)
            getattr(codec, part).load_state_dict(getattr(donor, part).state_dict())
        return
    source_config, state = _read_source(source)
    fit = weights_fit(source_config, codec.config)
    if fit is None:
        check_codec_matches({"codec": json.dumps(source_config)}, codec.config, source)  # raises
    codec.load_state_dict(state)
    if fit == "to_frame_skip":
        codec.inter.start_as_copy()


#: The codec-config key of each part's width.
PART_WIDTH = {"intra": "intra_width", "inter": "width"}


def _read_source(source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(codec config, model state) of a training checkpoint or ``pretrained:<name>``."""
    if source.startswith("pretrained:"):
        from lwdvc.models.pretrained import pretrained

        other = pretrained(source.split(":", 1)[1])
        return other.config, other.state_dict()
    payload = load_checkpoint(source)
    return checkpoint_codec(payload), payload["model"]


def _p_frame_modules(codec: VideoCodec, names: list[str], option: str) -> list[torch.nn.Module]:
    """The P-frame codec's submodules called ``names`` (ConfigError naming an unknown one)."""
    children = dict(codec.inter.named_children())
    unknown = [name for name in names if name not in children]
    if unknown:
        raise ConfigError(f"the {codec.family} P-frame codec has no module {', '.join(map(repr, unknown))} "
                          f"({option} takes: {', '.join(children)})")
    return [children[name] for name in names]


def _trainable(codec: VideoCodec, stage: str, modules: list[str] = ()) -> list[torch.nn.Parameter]:
    for parameter in codec.parameters():
        parameter.requires_grad_(False)
    if modules:
        params = [p for module in _p_frame_modules(codec, modules, "train_modules") for p in module.parameters()]
    elif stage in ("flow", "motion"):
        check_motion_stage(codec, stage)
        params = (list(codec.inter.optic_flow.parameters()) if stage == "flow"
                  else codec.inter.motion_parameters())
    else:
        parts = {"intra": [codec.intra], "residual": [codec.inter], "inter": [codec.inter],
                 "joint": [codec.intra, codec.inter]}[stage]
        params = [p for part in parts for p in part.parameters()]
    for parameter in params:
        parameter.requires_grad_(True)
    return params


def _build_state(config: TrainConfig, ctx: DistContext):
    _seed_everything(config.seed)  # identical initial weights on every rank
    codec = VideoCodec.from_config(config.codec_config())
    fresh = {name: copy.deepcopy(module.state_dict()) for name, module in
             zip(config.fresh_modules, _p_frame_modules(codec, config.fresh_modules, "fresh_modules"))}
    if config.init:
        load_init_weights(codec, config.init)
    for name, state in fresh.items():  # back to this seed's initial weights
        getattr(codec.inter, name).load_state_dict(state)
    params = _trainable(codec, config.stage, config.train_modules)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, config.lr_factor)
    return codec, optimizer, scheduler


def _non_finite_weights(codec: VideoCodec) -> list[str]:
    """Names of the model's floating-point tensors that hold a NaN or inf."""
    return [name for name, t in codec.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]


def _save(path: str, config: TrainConfig, codec: VideoCodec, optimizer, scheduler, step: int,
          sampler: StepSampler, history: list[dict], ctx: DistContext) -> None:
    """Write the checkpoint (the caller has checked that the weights are finite)."""
    states = ctx.gather(rng_state())
    if ctx.is_main:
        save_atomic({
            "format": FORMAT, "version": VERSION, "config": config.to_json(),
            "codec": json.dumps(codec.config, sort_keys=True), "model": codec.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "step": step, "rng": states, "sampler": sampler.position(step), "history": history,
        }, path)
    ctx.barrier()


def snapshot_path(path: str, step: int) -> str:
    """Where the copy of checkpoint ``path`` at ``step`` is kept (``checkpoint_step<step>.pt``)."""
    root, ext = os.path.splitext(path)
    return f"{root}_step{step:06d}{ext}"


def train(config: TrainConfig, out_dir: str | os.PathLike, resume: bool = False,
          progress: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Train (or continue training) a codec.

    Args:
        config: the run's configuration.
        out_dir: folder of ``checkpoint.pt``.
        resume: continue from ``<out_dir>/checkpoint.pt`` (its codec must match ``config``).
        progress: show a tqdm bar (main rank only).
        overwrite: start afresh even though ``<out_dir>/checkpoint.pt`` exists (it is replaced).

    Returns:
        ``{"step", "checkpoint", "history"}`` of the finished run.

    Raises:
        TrainingDiverged: the loss or gradient stopped being finite.
        CheckpointError: ``resume`` without a usable checkpoint, or one of another codec.
        BadArgumentError: ``out_dir`` is a file, or already holds a checkpoint and neither
            ``resume`` nor ``overwrite`` is set (or both are).
    """
    out_dir = os.fspath(out_dir)
    path = os.path.join(out_dir, CHECKPOINT_NAME)
    if resume and overwrite:
        raise BadArgumentError("resume and overwrite exclude each other: resume continues the checkpoint, "
                               "overwrite replaces it")
    if not resume and not overwrite and os.path.exists(path):
        raise BadArgumentError(f"{out_dir} already holds a checkpoint ({path}); pass --resume to continue it, "
                               "--overwrite to replace it, or choose another output folder")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BadArgumentError(f"the output folder {out_dir} is an existing file; give a folder (new or existing)")
    ctx = DistContext.from_env()
    try:
        return _train(config, out_dir, resume, progress, ctx)
    finally:
        ctx.close()


def changed_settings(stored_json: str, config: TrainConfig) -> list[str]:
    """``"name old -> new"`` for every setting of ``config`` that differs from the stored JSON."""
    try:
        stored = json.loads(stored_json)
    except (TypeError, ValueError):
        return []
    current = json.loads(config.to_json())
    return [f"{name} {stored.get(name)!r} -> {value!r}" for name, value in sorted(current.items())
            if name in stored and stored[name] != value]


def _warn_changed_settings(payload: dict, config: TrainConfig, path: str) -> None:
    changed = changed_settings(payload.get("config"), config)
    if changed:
        print(f"warning: resuming {path} with changed settings (the run continues with the new values): "
              f"{', '.join(changed)}", file=sys.stderr)


def _train(config: TrainConfig, out_dir: str, resume: bool, progress: bool,
           ctx: DistContext) -> dict[str, Any]:
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    if config.batch_size % ctx.world:
        raise ConfigError(f"batch_size {config.batch_size} is not divisible by {ctx.world} processes")
    path = os.path.join(out_dir, CHECKPOINT_NAME)
    payload = None
    if resume:
        payload = load_checkpoint(path)
        check_codec_matches(payload, config.codec_config(), path)
        if ctx.is_main:
            _warn_changed_settings(payload, config, path)
        if len(payload["rng"]) != ctx.world:
            raise CheckpointError(f"{path} was written by {len(payload['rng'])} processes, "
                                  f"resuming needs the same number (got {ctx.world})")
    codec, optimizer, scheduler = _build_state(config, ctx)
    dataset = training_dataset(config)
    sampler = StepSampler(len(dataset), config.batch_size // ctx.world, config.seed, ctx.rank, ctx.world)
    step, history = 0, []
    _seed_everything(config.seed + 1 + ctx.rank)
    if payload is not None:
        codec.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        step, history = int(payload["step"]), list(payload["history"])
        set_rng_state(payload["rng"][ctx.rank])
    objective = RDObjective(codec, config.lambdas, config.stage).train()
    model = DistributedDataParallel(objective, find_unused_parameters=True) if ctx.world > 1 else objective
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if ctx.is_main:
        os.makedirs(out_dir, exist_ok=True)
    bar = tqdm(total=config.steps, initial=step, disable=not (progress and ctx.is_main),
               desc=f"train {config.family} ({config.stage})", unit="step", dynamic_ncols=True)
    last_saved = step if payload is not None else None
    while step < config.steps:
        group = torch.stack([dataset[i] for i in sampler.indices(step)])
        rate = torch.randint(codec.num_rates, (group.shape[0],))
        objective.rate_weight = config.rate_weight(step)
        out, failure = _forward(model, group, rate, config.precision)
        local = (torch.tensor([float("nan")] * 3 + [1.0]) if out is None else
                 torch.stack([out["loss"].detach(), out["bpp"], out["mse"],
                              (~torch.isfinite(out["loss"].detach())).float()]))
        stats = ctx.all_sum(local)  # every rank takes part, also the one whose forward failed
        if failure is not None:
            _diverged(bar, "forward pass", float("nan"), step, path, last_saved, detail=str(failure))
        if stats[3] > 0 or not torch.isfinite(stats[:3]).all():
            _diverged(bar, "loss", stats[0] / ctx.world, step, path, last_saved)
        optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip if config.grad_clip > 0 else float("inf"))
        if not torch.isfinite(ctx.all_sum(norm.reshape(1))).all():
            _diverged(bar, "gradient norm", norm, step, path, last_saved)
        optimizer.step()
        scheduler.step()
        step += 1
        loss, bpp, mse = (float(v) / ctx.world for v in stats[:3])
        if step % config.log_every == 0 or step == config.steps:
            history.append({"step": step, "loss": loss, "bpp": bpp, "psnr": float(psnr_from_mse(mse)),
                            "lr": scheduler.get_last_lr()[0]})
        bar.set_postfix(loss=f"{loss:.4f}", bpp=f"{bpp:.3f}", psnr=f"{float(psnr_from_mse(mse)):.2f}")
        bar.update(1)
        if step % config.checkpoint_every == 0 or step == config.steps:
            bad = _non_finite_weights(codec)
            if ctx.all_sum(torch.tensor([float(len(bad))]))[0] > 0:
                what = f"{len(bad)} tensor(s), e.g. {bad[0]}" if bad else "on another process"
                _diverged(bar, "model weights", float("nan"), step - 1, path, last_saved, detail=what)
            _save(path, config, codec, optimizer, scheduler, step, sampler, history, ctx)
            last_saved = step
            if config.keep_every and step % config.keep_every == 0 and ctx.is_main:
                copy_atomic(path, snapshot_path(path, step))
    bar.close()
    return {"step": step, "checkpoint": path, "history": history, "codec": codec}


def guarded_forward(fn, *args, **kwargs) -> tuple[Any, Exception | None]:
    """``(fn(*args, **kwargs), None)``, or ``(None, error)`` when the forward pass met non-finite
    values it cannot compute with (a diverged model): offsets reaching a deformable convolution
    (:class:`NonFiniteOffsetError`) or NaN/inf parameters of a ``torch.distributions``
    distribution. Any other error propagates. Shared by training and the pruning fine-tune."""
    try:
        return fn(*args, **kwargs), None
    except NonFiniteOffsetError as error:
        return None, error
    except ValueError as error:
        if not _non_finite_distribution_argument(error):
            raise
        return None, ValueError(str(error).split(", but found invalid values")[0].strip())


def _forward(model, group: torch.Tensor, rate: torch.Tensor,
             precision: str = "float32") -> tuple[dict | None, Exception | None]:
    """:func:`guarded_forward` of ``model(group, rate)``; ``precision`` "bfloat16" runs it under
    bfloat16 autocast."""
    with torch.autocast(group.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
        return guarded_forward(model, group, rate)


def _non_finite_distribution_argument(error: ValueError) -> bool:
    """True when ``error`` is a ``torch.distributions`` validation error about a parameter or
    value holding NaN/inf (its check's ``value``), not another bad argument."""
    root = os.path.dirname(torch.distributions.__file__) + os.sep
    tb = error.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.startswith(root):
            value = frame.f_locals.get("value")
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                return True
        tb = tb.tb_next
    return False


def _diverged(bar, what: str, value, step: int, path: str, last_saved: int | None, detail: str = "") -> None:
    bar.close()
    kept = (f"the last good checkpoint {path} (step {last_saved}) was kept" if last_saved is not None
            else "no checkpoint had been written yet")
    became = f"met non-finite values ({detail})" if detail else f"became {float(value)}"
    raise TrainingDiverged(f"training stopped: the {what} {became} at step {step + 1}; "
                           f"{kept}. Lower the learning rate or the lambdas and resume.")
