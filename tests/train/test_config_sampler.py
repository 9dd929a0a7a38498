"""TrainConfig validation and JSON round trip; the resumable step sampler."""
from __future__ import annotations

import pytest

from lwdvc.errors import ConfigError
from lwdvc.train import DCVC_HEM_LAMBDAS, TrainConfig, default_lambdas
from lwdvc.train.sampler import StepSampler


def test_config_json_round_trip_and_defaults():
    config = TrainConfig(width=0.5, crop=128, steps=7, data=["a.mp4"])
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert config.lambdas == list(DCVC_HEM_LAMBDAS) == [85.0, 170.0, 380.0, 840.0]
    assert config.intra_width == 0.5
    assert TrainConfig(family="fvc").lambdas == [380.0]
    lambdas = default_lambdas(3)
    assert lambdas[0] == pytest.approx(85.0) and lambdas[-1] == pytest.approx(840.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"family": "h264"}, "unknown codec family"),
    ({"lambdas": [1.0, 2.0]}, "2 lambdas given for 4 rate points"),
    ({"stage": "all"}, "stage must be one of"),
    ({"crop": 100}, "multiple of 16"),
    ({"frames": 1}, "frames >= 2"),
    ({"width": 0.0}, "widths must be > 0"),
    ({"steps": 0}, "steps must be >= 1"),
    ({"lr": float("inf")}, "finite numbers, got lr=inf"),
    ({"lr": float("nan")}, "finite numbers, got lr=nan"),
    ({"grad_clip": float("inf")}, "finite numbers, got grad_clip=inf"),
    ({"lambdas": [85.0, 170.0, float("inf"), 840.0]}, "finite numbers, got lambdas="),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kwargs)


def test_config_rejects_unknown_json_keys():
    with pytest.raises(ValueError, match="unknown training config keys: colour"):
        TrainConfig.from_json('{"colour": 1}')


def test_intra_stage_uses_single_frames():
    assert TrainConfig(stage="intra", frames=5).frames == 1


def test_sampler_is_a_function_of_the_step_and_splits_ranks():
    length, batch, world = 10, 3, 2
    ranks = [StepSampler(length, batch, seed=5, rank=r, world=world) for r in range(world)]
    for step in range(7):
        global_batch = ranks[0].indices(step) + ranks[1].indices(step)
        assert len(global_batch) == batch * world
        # a fresh sampler (as after a resume) gives the same indices
        assert StepSampler(length, batch, seed=5, rank=1, world=world).indices(step) == ranks[1].indices(step)
    # every epoch is a permutation: the first 10 drawn positions cover the dataset once
    drawn = [i for step in range(5) for r in ranks for i in r.indices(step)][:length]
    assert sorted(drawn) == list(range(length))
    assert ranks[0].position(4) == {"epoch": 2, "offset": 4, "consumed": 24}
    assert StepSampler(length, batch, seed=6).indices(0) != StepSampler(length, batch, seed=5).indices(0) \
        or StepSampler(length, batch, seed=6).indices(1) != StepSampler(length, batch, seed=5).indices(1)


def test_sampler_rejects_empty_dataset():
    with pytest.raises(ValueError, match="training dataset is empty"):
        StepSampler(0, 2, seed=0)
