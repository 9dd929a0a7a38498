"""load_official: container unwrapping, prefix stripping, weights_only and named key errors."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import InputFileError
from lwdvc.models import build, load_official
from lwdvc.models.zoo import StateDictMismatchError, register, unwrap_checkpoint


@register("_tiny_test_model")
class _Tiny(torch.nn.Module):
    def __init__(self, channels: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(channels, 4, 3)
        self.head = torch.nn.Linear(4, 2)


def _state(seed: int = 0, channels: int = 3):
    torch.manual_seed(seed)
    return _Tiny(channels).state_dict()


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s},
    lambda s: {"net": s, "epoch": 3},
    lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
    lambda s: {"net": {"state_dict": {f"module.module.{k}": v for k, v in s.items()}}},
])
def test_loads_wrapped_checkpoints(tmp_path, wrap):
    state = _state(1)
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(state), path)
    model = load_official("_tiny_test_model", path)
    assert not model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_reports_missing_unexpected_and_misshaped_keys(tmp_path):
    state = _state(2)
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    state["conv.weight"] = torch.ones(4, 5, 3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(StateDictMismatchError) as info:
        load_official("_tiny_test_model", path)
    message = str(info.value)
    assert "missing keys (1): head.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "conv.weight (checkpoint (4, 5, 3, 3), model (4, 3, 3, 3))" in message


def test_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"state_dict": _state(), "config": _Tiny}, path)
    with pytest.raises(InputFileError, match="holds pickled code or objects beyond tensors") as raised:
        load_official("_tiny_test_model", path)
    assert "weights_only=False" not in str(raised.value)


def test_missing_file_and_bad_containers(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_official("_tiny_test_model", tmp_path / "absent.pth")
    with pytest.raises(TypeError, match="not a tensor"):
        unwrap_checkpoint({"conv.weight": 3})
    with pytest.raises(TypeError, match="mapping"):
        unwrap_checkpoint([torch.ones(1)])


@pytest.mark.parametrize("name", ["dcvc", "dcvc_hem", "dcvc_hem_intra"])
def test_official_models_round_trip(tmp_path, name):
    model = build(name, width=0.25)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(0.5, 1.5)
    path = tmp_path / f"{name}.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = load_official(name, path, width=0.25)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_hyperprior_ignores_derived_checkpoint_buffers(tmp_path):
    model = build("hyperprior", quality=1, width=0.25)
    state = dict(model.state_dict())
    # buffers that classic checkpoints carry besides the parameters
    state.update({
        "g_a.1.beta_reparam.pedestal": torch.tensor([2.0 ** -36]),
        "g_a.1.gamma_reparam.lower_bound.bound": torch.tensor([2.0 ** -18]),
        "entropy_bottleneck._offset": torch.zeros(4, dtype=torch.int32),
        "entropy_bottleneck._quantized_cdf": torch.zeros(4, 9, dtype=torch.int32),
        "entropy_bottleneck._cdf_length": torch.zeros(4, dtype=torch.int32),
        "entropy_bottleneck.target": torch.zeros(3),
        "entropy_bottleneck.likelihood_lower_bound.bound": torch.tensor([1e-9]),
        "gaussian_conditional.scale_table": torch.ones(64),
        "gaussian_conditional.scale_bound": torch.tensor([0.11]),
        "gaussian_conditional.lower_bound_scale.bound": torch.tensor([0.11]),
    })
    path = tmp_path / "hyperprior.pth.tar"
    torch.save(state, path)
    loaded = load_official("hyperprior", path, quality=1, width=0.25)
    assert torch.equal(loaded.g_s[0].weight, model.g_s[0].weight)
    state.pop("g_s.0.weight")
    torch.save(state, path)
    with pytest.raises(StateDictMismatchError, match="g_s.0.weight"):
        load_official("hyperprior", path, quality=1, width=0.25)
