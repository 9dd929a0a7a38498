"""save/load of compacted models: round trip via a template, Sequential without one, errors."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lwdvc_kernels.compaction import channel_groups, compact
from lwdvc_kernels.serialize import load, save

from .helpers import masks_for_reduction
from .models import HybridDecoder, WarpDecoder, hybrid_inputs, randomize_, warp_inputs


@pytest.mark.parametrize("cls,inputs", [(HybridDecoder, hybrid_inputs), (WarpDecoder, warp_inputs)])
def test_round_trip_through_dense_template(tmp_path, cls, inputs):
    model, x = randomize_(cls()), inputs()
    masks = masks_for_reduction(channel_groups(model, x), 0.65, seed=5)
    small = compact(model, x, masks=masks)
    save(small, tmp_path / "small.safetensors")
    template = cls()  # fresh dense architecture, other weights
    restored = load(tmp_path / "small.safetensors", template=template)
    dense_shapes = {k: v.shape for k, v in cls().state_dict().items()}
    assert {k: v.shape for k, v in template.state_dict().items()} == dense_shapes  # template untouched
    assert any(v.shape != dense_shapes[k] for k, v in restored.state_dict().items())
    for (k, a), (k2, b) in zip(small.state_dict().items(), restored.state_dict().items()):
        assert k == k2 and torch.equal(a, b) and a.stride() == b.stride()  # channels-last layout kept
    assert any(a.dim() == 4 and not a.is_contiguous() for a in restored.state_dict().values())
    with torch.no_grad():
        torch.testing.assert_close(restored.eval()(*x), small.eval()(*x), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp"))


def test_sequential_without_template(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 12, 3, padding=1), nn.PixelShuffle(2),
                          nn.Conv2d(3, 2, 1))
    x = torch.randn(1, 3, 6, 6)
    analysis = channel_groups(model, x)
    small = compact(model, x, masks={g.name: torch.rand(g.size) > 0.4 for g in analysis.prunable})
    save(small, tmp_path / "seq.safetensors")
    restored = load(tmp_path / "seq.safetensors")
    with torch.no_grad():
        assert torch.equal(restored(x), small(x))


def test_errors_are_clear(tmp_path):
    model = HybridDecoder()
    path = tmp_path / "m.safetensors"
    save(model, path)
    with pytest.raises(ValueError, match="needs a template"):
        load(path)
    with pytest.raises(ValueError, match="missing modules|is .* in the template"):
        load(path, template=WarpDecoder())
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load(corrupt)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"),
              metadata={"lwdvc.layout": json.dumps({"format": "x"})})
    with pytest.raises(ValueError, match="format"):
        load(tmp_path / "plain.safetensors", template=model)


def test_refuses_masked_model(tmp_path):
    from lwdvc_kernels.masking import attach_masks

    model, x = HybridDecoder(), hybrid_inputs()
    attach_masks(model, channel_groups(model, x))
    with pytest.raises(ValueError, match="parametrizations"):
        save(model, tmp_path / "m.safetensors")


def _nested(children: int) -> nn.Sequential:
    """A Sequential of ``children`` layers 4 -> 4 channels: child 1 a Sequential, child 10 a ReLU,
    so that the names "10", "11" start like the nested child's "1"."""
    def child(i: int) -> nn.Module:
        if i == 1:
            return nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())
        return nn.ReLU() if i == 10 else nn.Conv2d(4, 4, 1)
    return nn.Sequential(*[child(i) for i in range(children)])


@pytest.mark.parametrize("children", [11, 12])
def test_nested_sequential_with_ten_or_more_children_without_template(tmp_path, children):
    torch.manual_seed(children)
    model = _nested(children).eval()
    save(model, tmp_path / "m")
    loaded = load(tmp_path / "m").eval()
    assert [type(m) for m in loaded.modules()] == [type(m) for m in model.modules()]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
