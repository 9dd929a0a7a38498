"""Pruning fine-tune of a trained codec's P-frame decoder: masks (GD/STE/...), optional ALD.

``prune_codec(teacher, config)`` copies the dense ``teacher`` into a student, attaches channel
masks to the student's P-frame decoder modules (:class:`lwdvc.prune.Pruner`, global MAC budget),
fine-tunes the student's P-frame codec for rate-distortion (the I-frame codec stays dense and
frozen), optionally with adaptive layer-wise distillation from the teacher
(:class:`lwdvc.distill.LayerwiseDistiller`), and compacts it (:func:`lwdvc.prune.finalize`,
verified). Training items are GOPs of an I-frame (coded by the frozen I-frame codec) and
``frames - 1 >= 2`` P-frames, each coded from the student's own decoded previous frame (its
decoded picture buffer, detached: gradients stop at the reference), so the P-to-P path (e.g. DCVC-HEM's
``feature_adaptor_P``) is trained too. For distillation the teacher codes every P-frame from the
student's state, so teacher and student see identical inputs; the distiller accumulates the
features of all P-frame calls of a step.

Loss per step: sum over the P-frames of ``lambda[rate] * MSE + bpp`` ``+ pruner.loss()`` (``wd``
mode, ``threshold`` selection's proxy term) ``+ lambda3(t) * L_ALD``. A non-finite loss, or a
forward pass that meets non-finite values (deformable offsets, distribution parameters; the same
check as training's, :func:`lwdvc.train.loop.guarded_forward`), stops it with ``TrainingDiverged``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import random
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from lwdvc.distill import LayerwiseDistiller
from lwdvc.errors import ConfigError
from lwdvc.models.video_codec import VideoCodec
from lwdvc.prune import MODES, SELECTIONS, Pruner, finalize
from lwdvc.train.config import check_finite_fields, default_lambdas
from lwdvc.train.data import training_dataset
from lwdvc.train.loop import TrainingDiverged, guarded_forward
from lwdvc.train.sampler import StepSampler

__all__ = ["PruneConfig", "prune_codec", "executed_decoder_modules"]


@dataclass
class PruneConfig:
    """Settings of a pruning fine-tune (JSON-able).

    Attributes:
        target: decoder MAC reduction to reach (0.65 = 65 % fewer MACs).
        mode: gradient mode of pruned weights: "gd" (gradient decay), "ste", "mask", "wd".
        selection: how the masks are chosen: "budget" (global top-k meeting the ramped MAC target
            at every update) or "threshold" (learnable per-group thresholds pulled towards the
            target by a sigmoid sparsity proxy; the final MAC reduction is what the masks give).
        threshold_lr: Adam learning rate of the thresholds ("threshold" selection).
        threshold_tau, threshold_lambda: the proxy's sigmoid temperature and loss weight lambda2.
        ald: add adaptive layer-wise distillation from the dense teacher.
        lambda3: initial distillation weight (decays along a sigmoid).
        steps: fine-tuning steps; lr: Adam learning rate of the P-frame codec.
        ramp: fraction of ``steps`` over which the MAC target ramps up from 0 (a sigmoid); the
            remaining steps fine-tune at the full target so the decoder recovers from the last cuts.
        lambdas: RD lambda per rate point (default: the codec's defaults).
        crop, batch_size, max_side, max_frames, data, seed, threads: as in TrainConfig.
        frames: frames per training item: an I-frame followed by ``frames - 1`` (>= 2) P-frames.
        analysis_size: (H, W) of the example inputs the channel analysis traces.
        round_to: every pruned group keeps a multiple of this many channels, within the MAC
            target (the pruner's budget counts the rounded masks).
        keep_dense: P-frame decoder modules that are never pruned (their MACs still count in
            the dense total the target is a fraction of), e.g. ``["mv_decoder"]``.
        log_every: steps between history rows.
    """

    target: float = 0.65
    mode: str = "gd"
    selection: str = "budget"
    threshold_lr: float = 0.05
    threshold_tau: float = 0.4
    threshold_lambda: float = 10.0
    ald: bool = True
    lambda3: float = 1.0
    steps: int = 300
    lr: float = 3e-4
    ramp: float = 0.4
    lambdas: list[float] | None = None
    crop: int = 96
    batch_size: int = 4
    max_side: int | None = 320
    max_frames: int | None = 60
    data: list[str] = field(default_factory=list)
    seed: int = 0
    threads: int = 0
    analysis_size: tuple[int, int] = (64, 64)
    round_to: int = 1
    keep_dense: list[str] = field(default_factory=list)
    log_every: int = 1
    frames: int = 3  # GOP length of a training item: an I-frame and frames - 1 >= 2 P-frames

    def __post_init__(self) -> None:
        check_finite_fields(self)
        if not self.lr > 0 or not self.lambda3 >= 0:
            raise ConfigError(f"lr must be > 0 and lambda3 >= 0, got lr={self.lr}, lambda3={self.lambda3}")
        if self.lambdas is not None and any(not v > 0 for v in self.lambdas):
            raise ConfigError(f"lambdas must be > 0, got {self.lambdas}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.selection not in SELECTIONS:
            raise ConfigError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not float(self.threshold_lr) > 0:
            raise ConfigError(f"threshold_lr must be > 0, got {self.threshold_lr}")
        if not 0.0 < self.target < 1.0:
            raise ConfigError(f"target must be in (0, 1), got {self.target}")
        for name in ("steps", "batch_size", "log_every", "round_to"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= float(self.ramp) <= 1.0:
            raise ConfigError(f"ramp must be a fraction of the steps in [0, 1], got {self.ramp}")
        if self.crop % 16:
            raise ConfigError(f"crop must be a multiple of 16, got {self.crop}")
        if int(self.frames) < 3:
            raise ConfigError(f"pruning fine-tunes on GOPs of an I-frame and >= 2 P-frames: frames must be >= 3, "
                              f"got {self.frames}")
        self.analysis_size = tuple(int(v) for v in self.analysis_size)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


@torch.no_grad()
def executed_decoder_modules(codec: VideoCodec, crop: int, p_frames: int = 2) -> list[str]:
    """Names of the P-frame decoder modules that run when coding ``p_frames`` P-frames after an I-frame."""
    fired: list[str] = []
    hooks = [module.register_forward_hook(lambda *_, name=name: fired.append(name))
             for name, module in codec.inter.decoder_modules().items()]
    try:
        frame = torch.rand(1, 3, crop, crop, generator=torch.Generator().manual_seed(0))
        rate = torch.zeros(1, dtype=torch.long)
        state = codec.reference_state(codec.code_intra(frame, rate, quant="round")["recon"].clamp(0, 1))
        for _ in range(p_frames):
            state = codec.code_inter(frame, state, rate, quant="round")["state"]
    finally:
        for hook in hooks:
            hook.remove()
    order = list(codec.inter.decoder_modules())
    return [name for name in order if name in set(fired)]


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def prune_codec(teacher: VideoCodec, config: PruneConfig, progress: bool = True, log=None) -> dict:
    """Prune and compact the P-frame decoder of ``teacher`` (which is not modified).

    Args:
        teacher: trained dense codec.
        config: the run's settings.
        progress: tqdm bar.
        log: optional callable ``log(step, metrics_dict)`` (e.g. a JsonlLogger's ``log``).

    Returns:
        ``{"compacted": VideoCodec with compacted P-frame decoder modules, "student": the masked
        student, "pruner": its Pruner, "history": [metrics rows], "compaction": finalize report, "config": dict}``.
    """
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    _seed(config.seed)
    teacher = teacher.eval()
    teacher.requires_grad_(False)
    student = copy.deepcopy(teacher)
    lambdas = config.lambdas or default_lambdas(teacher.num_rates)
    if len(lambdas) != teacher.num_rates:
        raise ConfigError(f"{len(lambdas)} lambdas for a codec with {teacher.num_rates} rate points")
    lam = torch.tensor(lambdas, dtype=torch.float32)
    pruner = Pruner.for_codec(student.inter, frame_size=config.analysis_size, target_mac_reduction=config.target,
                              mode=config.mode, selection=config.selection, total_steps=config.steps,
                              ramp_steps=int(round(config.ramp * config.steps)), round_to=config.round_to,
                              keep_dense=list(config.keep_dense), threshold_tau=config.threshold_tau,
                              threshold_lambda=config.threshold_lambda)
    distiller = None
    if config.ald:
        layers = executed_decoder_modules(student, config.crop, config.frames - 1)
        distiller = LayerwiseDistiller(teacher.inter, student.inter, layers=layers, total_steps=config.steps,
                                       lambda3=config.lambda3)
    student.train()
    student.intra.eval()
    student.requires_grad_(False)
    params = [p for p in student.inter.parameters()]
    for p in params:
        p.requires_grad_(True)
    groups = [{"params": [p for p in params if p.requires_grad]}]
    if pruner.parameters():  # "threshold" selection: the per-group thresholds, at their own rate
        groups.append({"params": pruner.parameters(), "lr": config.threshold_lr})
    optimizer = torch.optim.Adam(groups, lr=config.lr)
    dataset = training_dataset(config)
    sampler = StepSampler(len(dataset), config.batch_size, config.seed)
    history: list[dict] = []
    bar = tqdm(range(config.steps), desc=f"prune {config.mode}{' + ALD' if config.ald else ''}",
               unit="step", disable=not progress, dynamic_ncols=True)
    for step in bar:
        prune_metrics = pruner.step()
        group = torch.stack([dataset[i] for i in sampler.indices(step)])
        rate = torch.randint(teacher.num_rates, (group.shape[0],))
        with torch.no_grad():
            ref = student.code_intra(group[:, 0], rate, quant="round")["recon"].clamp(0, 1)
        state = student.reference_state(ref)
        if distiller is not None:
            distiller.step()
        rd, mse, bpp = torch.zeros(()), torch.zeros(group.shape[0]), torch.zeros(group.shape[0])
        with pruner.batched:  # every masked weight computed once for all P-frames of the step
            for t in range(1, group.shape[1]):
                if distiller is not None:  # the teacher codes the same frame from the student's state
                    args, kwargs = teacher.inter_inputs(group[:, t], state, rate)
                    distiller.teacher_forward(*args, accumulate=t > 1, **kwargs)
                out, failure = guarded_forward(student.code_inter, group[:, t], state, rate)
                if failure is not None:
                    raise TrainingDiverged(f"pruning fine-tune diverged: the forward pass met non-finite values "
                                           f"at step {step + 1} ({failure}); lower the learning rate") from failure
                # the next P-frame codes from this decoded state; gradients stop at the reference
                state = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in out["state"].items()}
                frame_mse = (out["recon"] - group[:, t]).square().mean(dim=(1, 2, 3))
                rd = rd + (lam[rate] * frame_mse + out["bpp"]).mean()
                mse, bpp = mse + frame_mse.detach(), bpp + out["bpp"].detach()
        p_frames = group.shape[1] - 1
        mse, bpp = mse / p_frames, bpp / p_frames  # rd stays the sum over the P-frames
        prune_loss = pruner.loss()
        ald = distiller.loss() if distiller is not None else torch.zeros(())
        loss = rd + prune_loss + ald
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"pruning fine-tune diverged: loss {float(loss)} at step {step + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        row = {**prune_metrics, "step": step + 1, "loss": float(loss.detach()), "rd_loss": float(rd.detach()),
               "bpp": float(bpp.mean()), "mse": float(mse.mean()), "prune_loss": float(prune_loss.detach()),
               "ald_loss": float(ald.detach())}
        if distiller is not None:
            row.update(distiller.metrics())
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            history.append(row)
            if log is not None:
                log(step + 1, row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", macs=f"-{100 * row['mac_reduction']:.1f}%",
                        flips=int(row["mask_flips"]))
    bar.close()
    if distiller is not None:
        distiller.remove()
    small_inter, report = finalize(pruner, round_to=config.round_to, verify=True, return_report=True)
    compacted = copy.deepcopy(student)
    compacted.inter = small_inter
    compacted.requires_grad_(False)
    return {"compacted": compacted.eval(), "student": student, "pruner": pruner, "history": history,
            "compaction": report,
            "config": dataclasses.asdict(config)}
