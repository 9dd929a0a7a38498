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


@pytest.fixture
def tiny():
    return tiny_config
