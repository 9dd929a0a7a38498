"""Pruner + distiller on a width-scaled DCVC's training forward (a few steps, tiny frames)."""
from __future__ import annotations

import copy

import torch

from lwdvc.distill import LayerwiseDistiller
from lwdvc.models import build
from lwdvc.prune import Pruner, finalize


def test_dcvc_finetune_steps_with_pruning_and_distillation():
    torch.manual_seed(0)
    teacher = build("dcvc", width=0.25)
    student = copy.deepcopy(teacher)
    steps = 4
    pruner = Pruner.for_codec(student, frame_size=(64, 64), target_mac_reduction=0.5, total_steps=steps,
                              ramp_steps=0)
    distiller = LayerwiseDistiller(teacher, student, total_steps=steps, stage_steps=1)
    assert distiller.layers[0] == "mvpriorDecoder" and distiller.layers[-1] == "contextualDecoder_part2"
    opt = torch.optim.Adam(student.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    ref, frame = torch.rand(1, 3, 64, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen)
    rows = []
    for _ in range(steps):
        metrics = pruner.step()
        distiller.step()
        distiller.teacher_forward(ref, frame, quant="round")
        out = student(ref, frame, quant="round")
        ald = distiller.loss()
        loss = out["bpp"].mean() + 256 * torch.mean((out["recon_image"] - frame) ** 2) + ald
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows.append({**metrics, **distiller.metrics(), "loss": float(loss.detach())})
    assert all(abs(r["mac_reduction"] - 0.5) <= 0.02 for r in rows)
    assert rows[-1]["ald_stage"] == 5.0  # one layer added per step (stage_steps=1)
    # pruned layers' features differ from the teacher's (full-resolution layers are pruned most)
    assert rows[0]["ald_loss/contextualDecoder_part2"] > 0 and rows[0]["ald_loss/mvDecoder_part2"] > 0
    assert all(p.grad is None for p in teacher.parameters())
    compacted = finalize(pruner)
    with torch.no_grad():
        a = pruner.model(ref, frame, quant="round")["recon_image"]
        b = compacted(ref, frame, quant="round")["recon_image"]
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
