"""A tiny fine-tuning loop shared by the pruning tests."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from lwdvc.prune import Pruner

from .models import latents, make_decoder


def finetune(mode: str, target: float, steps: int = 100, seed: int = 0, lr: float = 1e-2,
             fixed_batch: bool = True, threshold_lr: float = 0.05, **pruner_kwargs):
    """Prune a copy of a random TwoStageDecoder while fitting the dense one's outputs.

    The pruner's own parameters (``selection="threshold"``: the thresholds) train at ``threshold_lr``.

    Returns:
        (pruner, list of per-step metrics, teacher).
    """
    teacher = make_decoder(seed=seed, gdn=False)
    student = copy.deepcopy(teacher)
    pruner = Pruner.for_codec(student, frame_size=(32, 32), target_mac_reduction=target, mode=mode,
                              total_steps=steps, ramp_steps=steps // 4, **pruner_kwargs)
    groups = [{"params": list(student.parameters())}]
    if pruner.parameters():
        groups.append({"params": pruner.parameters(), "lr": threshold_lr})
    opt = torch.optim.Adam(groups, lr=lr)
    history = []
    for step in range(steps):
        y = latents(2, 4, seed=0 if fixed_batch else step)
        with torch.no_grad():
            target_image = teacher(y)
        metrics = pruner.step()
        loss = F.mse_loss(student(y), target_image) / target_image.var() + pruner.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append({**metrics, "loss": float(loss.detach())})
    return pruner, history, teacher
