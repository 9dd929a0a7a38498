"""Bad configurations fail before any mask is attached; schedules follow their formula."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lwdvc.prune import PruneConfigError, Pruner, SigmoidSchedule, beta_schedule, target_ramp
from lwdvc_kernels.masking import has_masks

from .models import make_decoder


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5, float("nan"), "0.5", True])
def test_target_outside_open_unit_interval(target):
    model = make_decoder()
    with pytest.raises(PruneConfigError, match="target_mac_reduction"):
        Pruner.for_codec(model, frame_size=(32, 32), target_mac_reduction=target)
    assert not has_masks(model)


def test_unknown_mode():
    with pytest.raises(PruneConfigError, match="mode"):
        Pruner.for_codec(make_decoder(), frame_size=(32, 32), mode="soft")


def test_modules_without_prunable_channels():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    with pytest.raises(PruneConfigError, match="no prunable channel"):
        Pruner(model, {"last": model[2]}, {"last": (torch.randn(1, 8, 8, 8),)})
    assert not has_masks(model)


def test_unreachable_budget():
    model = make_decoder()
    with pytest.raises(PruneConfigError, match="cannot be met"):
        Pruner.for_codec(model, frame_size=(32, 32), target_mac_reduction=0.6, min_keep=0.8)
    assert not has_masks(model)


def test_scope_errors():
    model = make_decoder()
    with pytest.raises(PruneConfigError, match="not a submodule"):
        Pruner(model, {"x": nn.Conv2d(3, 3, 1)}, {"x": (torch.randn(1, 3, 4, 4),)})
    with pytest.raises(PruneConfigError, match="no example inputs"):
        Pruner(model, ["upsampler", "refiner"], {"upsampler": (torch.randn(1, 8, 4, 4),)})
    with pytest.raises(PruneConfigError, match="empty"):
        Pruner(model, {}, {})
    with pytest.raises(PruneConfigError, match="example_inputs is required"):
        Pruner(model, ["refiner"])
    with pytest.raises(PruneConfigError, match="no decoder_modules"):
        Pruner.for_codec(nn.Conv2d(3, 3, 1))
    assert not has_masks(model)


def test_list_of_names_scope():
    model = make_decoder()
    pruner = Pruner(model, ["refiner"], {"refiner": (torch.randn(1, 8, 8, 8),)},
                    target_mac_reduction=0.3, ramp_steps=0)
    assert abs(pruner.step()["mac_reduction"] - 0.3) <= 0.02
    assert has_masks(model.refiner) and not has_masks(model.upsampler)


def test_sigmoid_schedule_formula():
    sched = beta_schedule(100, steepness=8.0, center=0.4)
    assert sched(0) == 1.0 and sched(100) == 0.0 and sched(1000) == 0.0
    values = [sched(t) for t in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    raw = lambda t: 1 - sig(8.0 * (t / 100 - 0.4))  # noqa: E731
    # an affine map of 1 - sigmoid(k (t/T - c)) pinned to 1 and 0 at the ends
    for t in (13, 40, 77):
        assert sched(t) == pytest.approx((raw(t) - raw(100)) / (raw(0) - raw(100)))
    ramp = target_ramp(50, 0.65)
    assert ramp(0) == 0.0 and ramp(25) == pytest.approx(0.325) and ramp(50) == pytest.approx(0.65)
    with pytest.raises(ValueError):
        SigmoidSchedule(0)
    with pytest.raises(ValueError):
        SigmoidSchedule(10, center=1.5)
