"""Adaptive layer-wise distillation (ALD) of decoder features from a frozen dense teacher.

Exact rule (docs/method/distillation.md):

* Layers ``1..K`` in data-flow order; ``d_l`` = :func:`feature_distance` of the student's and the
  teacher's outputs of layer ``l`` (channel-L2-normalised, in [0, 4]); ``D_l`` its EMA
  (``D <- ema * D + (1 - ema) * d``, started at the first value).
* Stage ``s`` (starting at 1) distils the layers ``A = {1..s}``. It hands over to ``s + 1`` after
  at least ``min_stage_steps`` steps once ``D_s <= handover_tol``, and after ``stage_steps``
  steps at the latest; from stage K on, all layers stay active.
* Weights ``w_l = D_l / mean_{j in A} D_j`` (mean 1; all 1 while every ``D`` is 0), detached.
* ``L_ALD = lambda3(t) * mean_{l in A} w_l * d_l`` with ``lambda3(t)`` a sigmoid decay.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lwdvc.distill.features import FeatureRecorder, feature_distance
from lwdvc.schedules import lambda3_schedule

__all__ = ["LayerwiseDistiller"]


def _layer_names(student: nn.Module, layers) -> list[str]:
    if layers is None:
        if not hasattr(student, "decoder_modules"):
            raise ValueError(f"{type(student).__name__} has no decoder_modules(); pass layers=")
        layers = student.decoder_modules()
    if isinstance(layers, Mapping):
        qualname = {id(m): n for n, m in student.named_modules()}
        names = []
        for key, module in layers.items():
            if id(module) not in qualname:
                raise ValueError(f"layer {key!r} is not a submodule of the student")
            names.append(qualname[id(module)])
    elif isinstance(layers, Sequence) and not isinstance(layers, str):
        names = [str(n) for n in layers]
    else:
        raise TypeError(f"layers must be a list of submodule names or a dict of modules, got {type(layers).__name__}")
    if not names:
        raise ValueError("LayerwiseDistiller needs at least one layer")
    if len(set(names)) != len(names):
        raise ValueError(f"layers listed twice: {names}")
    return names


class LayerwiseDistiller:
    """Distil the outputs of named submodules of ``student`` towards those of ``teacher``.

    Usage per training step::

        distiller.step()                          # advance lambda3(t)
        distiller.teacher_forward(*inputs)        # teacher under torch.no_grad, records features
        out = student(*inputs)                    # hooks record the student's features
        loss = rd_loss + distiller.loss()         # lambda3(t) * L_ALD; also updates the stage

    Args:
        teacher: the dense pre-trained model; frozen here (eval mode, no gradients).
        student: the model being pruned (same submodule names for the distilled layers).
        layers: qualified submodule names in data-flow order, a ``{name: student submodule}``
            dict, or None for ``student.decoder_modules()``.
        total_steps: T of the lambda3 decay.
        lambda3: lambda3(0); decays to 0 along ``lambda3_schedule(T, lambda3, k, c)``.
        lambda3_steepness, lambda3_center: k and c of the decay.
        stage_steps: longest stage in steps (default ``max(1, T // (2 K))``: all layers active by
            mid-training at the latest).
        min_stage_steps: shortest stage (default ``max(1, stage_steps // 4)``).
        handover_tol: EMA distance under which the newest layer hands over early.
        ema: smoothing of the per-layer distances.
    """

    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        layers: Mapping[str, nn.Module] | Sequence[str] | None = None,
        *,
        total_steps: int = 1000,
        lambda3: float = 1.0,
        lambda3_steepness: float = 10.0,
        lambda3_center: float = 0.5,
        stage_steps: int | None = None,
        min_stage_steps: int | None = None,
        handover_tol: float = 0.02,
        ema: float = 0.9,
    ) -> None:
        if teacher is student:
            raise ValueError("teacher and student must be different models (deep-copy the dense model)")
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive int, got {total_steps!r}")
        if lambda3 < 0 or not 0.0 <= ema < 1.0 or handover_tol < 0:
            raise ValueError("need lambda3 >= 0, 0 <= ema < 1 and handover_tol >= 0")
        self.layers = _layer_names(student, layers)
        self.teacher, self.student = teacher, student
        teacher.eval()
        teacher.requires_grad_(False)
        k = len(self.layers)
        self.stage_steps = max(1, total_steps // (2 * k)) if stage_steps is None else int(stage_steps)
        self.min_stage_steps = max(1, self.stage_steps // 4) if min_stage_steps is None else int(min_stage_steps)
        if self.stage_steps < 1 or not 1 <= self.min_stage_steps <= self.stage_steps:
            raise ValueError("need 1 <= min_stage_steps <= stage_steps")
        self.handover_tol, self.ema = float(handover_tol), float(ema)
        self.schedule = lambda3_schedule(total_steps, lambda3, lambda3_steepness, lambda3_center)
        self._teacher_rec = FeatureRecorder(teacher, self.layers, detach=True)
        self._student_rec = FeatureRecorder(student, self.layers)
        self._step = 0
        self._lambda3 = self.schedule(0)
        self.stage = 1
        self._stage_age = 0
        self._ema: dict[str, float | None] = {name: None for name in self.layers}
        self._last: dict[str, float] = {}
        self._weights: dict[str, float] = {}
        self._last_loss = 0.0

    @property
    def lambda3(self) -> float:
        return self._lambda3

    def active_layers(self) -> list[str]:
        return self.layers[: self.stage]

    def step(self) -> None:
        """Advance the step counter and lambda3(t) (call once per training step)."""
        self._lambda3 = self.schedule(self._step)
        self._step += 1

    def teacher_forward(self, *args: Any, accumulate: bool = False, **kwargs: Any) -> Any:
        """Run the teacher under ``torch.no_grad`` and record its features; arms the student hooks.

        Args:
            *args, **kwargs: the teacher's inputs.
            accumulate: keep the features recorded since the last :meth:`loss` (several
                teacher/student call pairs in one step, e.g. the P-frames of a GOP; :meth:`distances`
                averages over them). A layer that runs only in some calls is averaged over the
                calls it ran in, as long as it runs in the same calls of teacher and student.

        Returns:
            The teacher's output.
        """
        if not accumulate:
            self._teacher_rec.clear()
            self._student_rec.clear()
        self._teacher_rec.armed = True
        try:
            with torch.no_grad():
                out = self.teacher(*args, **kwargs)
        finally:
            self._teacher_rec.armed = False
        self._student_rec.armed = True
        return out

    def distances(self) -> dict[str, torch.Tensor]:
        """``{layer: d_l}`` of the recorded student/teacher features (mean over repeated calls)."""
        out = {}
        for name in self.layers:
            s, t = self._student_rec.features[name], self._teacher_rec.features[name]
            if len(s) != len(t):
                raise RuntimeError(f"layer {name!r}: the student produced {len(s)} features, the "
                                   f"teacher {len(t)}; call teacher_forward then the student forward")
            if not s:
                raise RuntimeError(f"layer {name!r} recorded no features; call teacher_forward and the "
                                   "student forward (on the same inputs) before loss()")
            out[name] = torch.stack([feature_distance(a, b) for a, b in zip(s, t)]).mean()
        return out

    def loss(self) -> torch.Tensor:
        """``lambda3(t) * L_ALD`` of the recorded features; updates EMAs, weights and the stage."""
        dist = self.distances()
        self._student_rec.armed = False
        self._student_rec.clear()
        self._teacher_rec.clear()
        for name, d in dist.items():
            value = float(d.detach())
            prev = self._ema[name]
            self._ema[name] = value if prev is None else self.ema * prev + (1 - self.ema) * value
            self._last[name] = value
        active = self.active_layers()
        mean_ema = sum(self._ema[n] for n in active) / len(active)
        self._weights = {n: (self._ema[n] / mean_ema if mean_ema > 0 else 1.0) for n in active}
        ald = torch.stack([self._weights[n] * dist[n] for n in active]).mean()
        self._last_loss = float(ald.detach())
        self._advance_stage()
        return self._lambda3 * ald

    def _advance_stage(self) -> None:
        self._stage_age += 1
        if self.stage >= len(self.layers):
            return
        newest = self._ema[self.layers[self.stage - 1]]
        early = self._stage_age >= self.min_stage_steps and newest is not None and newest <= self.handover_tol
        if early or self._stage_age >= self.stage_steps:
            self.stage += 1
            self._stage_age = 0

    def metrics(self) -> dict[str, float]:
        """``lambda3``, ``ald_stage``, ``ald_loss`` (before lambda3), ``ald_loss/<layer>`` (last
        d_l of every layer) and ``ald_weight/<layer>`` (0 for inactive layers)."""
        out = {"lambda3": self._lambda3, "ald_stage": float(self.stage), "ald_loss": self._last_loss}
        for name in self.layers:
            if name in self._last:
                out[f"ald_loss/{name}"] = self._last[name]
            out[f"ald_weight/{name}"] = self._weights.get(name, 0.0)
        return out

    state = metrics

    def remove(self) -> None:
        """Remove the forward hooks from both models."""
        self._teacher_rec.remove()
        self._student_rec.remove()
