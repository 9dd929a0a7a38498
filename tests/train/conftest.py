"""Tiny training configurations shared by the training tests."""
from __future__ import annotations

import pytest

from lwdvc.train import TrainConfig


def tiny_config(**overrides) -> TrainConfig:
    """A DCVC-HEM run small enough for a fraction of a second per step on one core."""
    values = dict(family="dcvc_hem", width=0.125, intra_width=0.125, frames=2, crop=64, batch_size=2,
                  steps=4, lr=1e-4, max_side=160, max_frames=3, checkpoint_every=1, log_every=1,
                  threads=1, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def tiny_objective(stage: str = "joint"):
    """(RDObjective of a width-0.125 DCVC-HEM, a [2, 2, 3, 64, 64] frame group, rate indices [0, 3])."""
    import torch

    from lwdvc.models import VideoCodec
    from lwdvc.train.objective import RDObjective

    torch.manual_seed(0)
    codec = VideoCodec("dcvc_hem", width=0.125)
    objective = RDObjective(codec, [85.0, 170.0, 380.0, 840.0], stage)
    return objective, torch.rand(2, 2, 3, 64, 64), torch.tensor([0, 3])


@pytest.fixture
def tiny():
    return tiny_config
