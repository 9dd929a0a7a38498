"""Rate warm-up: the bpp term's weight ramps from 0 to 1 over a fraction of the steps."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import ConfigError

from .conftest import tiny_config, tiny_objective


def test_rate_weight_schedule():
    config = tiny_config(steps=100, rate_warmup=0.2)
    assert [config.rate_weight(s) for s in (0, 10, 20, 50)] == [0.0, 0.5, 1.0, 1.0]
    assert tiny_config(steps=100).rate_weight(0) == 1.0
    with pytest.raises(ConfigError, match="rate_warmup"):
        tiny_config(rate_warmup=1.0)


def test_objective_without_rate_is_the_weighted_distortion():
    objective, group, rate = tiny_objective()
    torch.manual_seed(1)
    full = objective(group, rate)
    objective.rate_weight = 0.0
    torch.manual_seed(1)
    distortion_only = objective(group, rate)
    # the same noise draws: only the rate term differs, by exactly the mean bpp
    assert distortion_only["mse"] == pytest.approx(float(full["mse"]), rel=1e-6)
    assert torch.allclose(full["loss"] - distortion_only["loss"], full["bpp"], rtol=1e-4)
