"""Adaptive layer-wise distillation: normalisation, teacher freezing, stages and effect."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from lwdvc.distill import LayerwiseDistiller, feature_distance, normalise_channels
from lwdvc.prune import Pruner

from ..prune.models import latents, make_decoder

LAYERS = ["upsampler.res", "upsampler.subpel", "upsampler", "refiner.body"]


def test_normalise_channels_unit_norm_and_scale_free():
    f = torch.randn(2, 5, 6, 7)
    n = normalise_channels(f)
    torch.testing.assert_close(n.flatten(2).norm(dim=2), torch.ones(2, 5))
    scale = torch.rand(1, 5, 1, 1) * 10 + 0.1
    assert float(feature_distance(f * scale, f)) == pytest.approx(0.0, abs=1e-10)
    assert float(feature_distance(-f, f)) == pytest.approx(4.0)
    expected = (n - normalise_channels(torch.ones_like(f))).square().sum((2, 3)).mean()
    torch.testing.assert_close(feature_distance(f, torch.ones_like(f)), expected)
    with pytest.raises(ValueError, match="differ in shape"):
        feature_distance(f, f[:, :4])


def test_teacher_is_frozen_and_runs_without_grad():
    teacher = make_decoder(seed=0)
    student = copy.deepcopy(teacher)
    distiller = LayerwiseDistiller(teacher, student, LAYERS, total_steps=10)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    distiller.step()
    y = latents(2, 4)
    out = distiller.teacher_forward(y)
    assert not out.requires_grad
    with torch.no_grad():
        student.upsampler.head.weight.add_(0.3 * torch.randn_like(student.upsampler.head.weight))
    student(y)
    loss = distiller.loss()  # stage 1: only the first layer (upsampler.res) is distilled
    assert loss.requires_grad and float(loss.detach()) > 0
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert float(student.upsampler.head.weight.grad.abs().sum()) > 0
    assert student.refiner.head.weight.grad is None


def test_stage_rule_weights_and_metrics():
    teacher = make_decoder(seed=0)
    student = make_decoder(seed=1)  # far from the teacher: no early handover
    distiller = LayerwiseDistiller(teacher, student, LAYERS, total_steps=80, stage_steps=3,
                                   min_stage_steps=2, handover_tol=0.0)
    assert distiller.stage_steps == 3
    stages, lambdas = [], []
    y = latents(2, 4)
    for _ in range(12):
        distiller.step()
        distiller.teacher_forward(y)
        student(y)
        used = distiller.active_layers()  # the layers this step's loss distils
        distiller.loss()
        stages.append(len(used))
        lambdas.append(distiller.lambda3)
        m = distiller.metrics()
        active = [m[f"ald_weight/{n}"] for n in used]
        assert sum(active) == pytest.approx(len(active))
        assert all(m[f"ald_weight/{n}"] == 0.0 for n in LAYERS[len(used):])
    assert stages == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]  # stage_steps = 3 each
    assert lambdas[0] == 1.0 and all(a >= b for a, b in zip(lambdas, lambdas[1:]))
    assert set(m) >= {"lambda3", "ald_stage", "ald_loss"} | {f"ald_loss/{n}" for n in LAYERS}
    # early handover when the newest layer is already close to the teacher
    same = LayerwiseDistiller(teacher, copy.deepcopy(teacher), LAYERS, total_steps=80, stage_steps=50,
                              min_stage_steps=1, handover_tol=0.02)
    for _ in range(3):
        same.step()
        same.teacher_forward(y)
        same.student(y)
        same.loss()
    assert same.stage == 4


def test_protocol_errors():
    teacher = make_decoder(seed=0)
    student = copy.deepcopy(teacher)
    with pytest.raises(ValueError, match="different models"):
        LayerwiseDistiller(teacher, teacher, LAYERS)
    with pytest.raises(ValueError, match="no submodule"):
        LayerwiseDistiller(teacher, student, ["nope"])
    distiller = LayerwiseDistiller(teacher, student, LAYERS)
    with pytest.raises(RuntimeError, match="recorded no features"):
        distiller.loss()
    defaults = LayerwiseDistiller(teacher, student, total_steps=40)  # decoder_modules() order
    assert defaults.layers == ["upsampler", "refiner"]
    distiller.remove()


def _distance_after_finetune(use_ald: bool, steps: int = 60) -> float:
    teacher = make_decoder(seed=0, gdn=False)
    student = copy.deepcopy(teacher)
    pruner = Pruner.for_codec(student, frame_size=(32, 32), target_mac_reduction=0.6, total_steps=steps,
                              ramp_steps=steps // 4)
    distiller = LayerwiseDistiller(teacher, student, LAYERS, total_steps=steps, lambda3=1.0)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(5)
    for step in range(steps):
        y = latents(2, 4, seed=step)
        target = distiller.teacher_forward(y) + 0.3 * torch.randn(2, 3, 16, 16, generator=gen)
        pruner.step()
        distiller.step()
        loss = F.mse_loss(student(y), target) / target.var()
        ald = distiller.loss()
        if use_ald:
            loss = loss + ald
        opt.zero_grad()
        loss.backward()
        opt.step()
    y = latents(4, 4, seed=1000)
    distiller.teacher_forward(y)
    with torch.no_grad():
        student(y)
        distances = distiller.distances()
    distiller.loss()
    return float(sum(distances.values()))


def test_ald_lowers_feature_distance():
    with_ald, without = _distance_after_finetune(True), _distance_after_finetune(False)
    assert with_ald < 0.8 * without

def test_accumulate_averages_the_distance_over_several_call_pairs():
    teacher = make_decoder(seed=0)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        student.upsampler.head.weight.add_(0.3 * torch.randn_like(student.upsampler.head.weight))
    distiller = LayerwiseDistiller(teacher, student, LAYERS, total_steps=10)
    inputs = [latents(2, 4, seed=1), latents(2, 4, seed=2)]
    singles = []
    for y in inputs:  # each pair on its own
        distiller.teacher_forward(y)
        student(y)
        singles.append({k: float(v) for k, v in distiller.distances().items()})
    for t, y in enumerate(inputs):  # both pairs in one step
        distiller.teacher_forward(y, accumulate=t > 0)
        student(y)
    both = distiller.distances()
    for name in LAYERS:
        assert float(both[name]) == pytest.approx((singles[0][name] + singles[1][name]) / 2, rel=1e-5)
        assert singles[0][name] != pytest.approx(singles[1][name])
