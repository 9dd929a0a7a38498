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
    # weights in memory of their own, aligned as the allocator aligns (not at a file offset), so
    # that CPU kernels round alike whatever the file's layout; the file may go away
    assert all(b.data_ptr() % 64 == 0 for b in restored.state_dict().values() if b.numel())
    (tmp_path / "small.safetensors").unlink()
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


def _rewritten(tmp_path, change=None, text=None, tensors=None):
    """A valid saved Sequential whose layout (or tensors) ``change`` / ``text`` / ``tensors`` replace."""
    import copy

    from safetensors import safe_open
    from safetensors.torch import save_file

    good = tmp_path / "good.safetensors"
    save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 1)), good)
    with safe_open(str(good), framework="pt") as f:
        layout = json.loads(f.metadata()["lwdvc.layout"])
        stored = {k: f.get_tensor(k) for k in f.keys()}
    if change is not None:
        layout = copy.deepcopy(layout)
        layout = change(layout) or layout
    bad = tmp_path / "bad.safetensors"
    save_file(tensors(stored) if tensors else stored, str(bad),
              metadata={"lwdvc.layout": text if text is not None else json.dumps(layout)})
    return bad


def _deep_modules(layout):
    chain = {".".join(["0"] * i): {"type": "torch.nn.modules.container.Sequential", "attrs": {}, "tensors": {}}
             for i in range(1, 3000)}
    return {**layout, "modules": {"": layout["modules"][""], **chain}}


def _set(path, value):
    def change(layout):
        target = layout
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("change, text, tensors, match", [
    pytest.param(lambda layout: [1, 2], None, None, "must be a JSON object", id="list"),
    pytest.param(lambda layout: {k: v for k, v in layout.items() if k != "modules"}, None, None,
                 "'modules' must be an object", id="no-modules"),
    pytest.param(None, "[" * 3000 + "]" * 3000, None, "no valid lwdvc layout", id="deep-json"),
    pytest.param(_deep_modules, None, None, "modules nest at most 64 deep", id="deep-modules"),
    pytest.param(_set(["modules", "0", "attrs"], None), None, None, "'attrs' must be a dict", id="attrs-null"),
    pytest.param(lambda layout: layout["modules"]["0"]["attrs"].pop("in_channels") and None, None, None,
                 "bad or missing attributes: KeyError: 'in_channels'", id="attr-missing"),
    pytest.param(_set(["modules", "0", "attrs", "in_channels"], "three"), None, None, "bad or missing attributes",
                 id="attr-type"),
    pytest.param(_set(["modules", "0", "tensors", "weight", "dtype"], "int64"), None, None,
                 "a parameter must have a floating dtype", id="integer-parameter"),
    pytest.param(_set(["modules", "0", "tensors", "weight", "dtype"], "fancy"), None, None,
                 "dtype must name a torch dtype", id="unknown-dtype"),
    pytest.param(_set(["modules", "0", "tensors", "weight", "shape"], "big"), None, None,
                 "shape must be a list of sizes", id="shape-type"),
    pytest.param(lambda layout: layout["modules"].__setitem__("x", layout["modules"].pop("1")), None, None,
                 "children that are not numbered", id="child-name"),
    pytest.param(None, None, lambda t: {**t, "0.weight": t["0.weight"].long()}, "has dtype torch.int64",
                 id="integer-tensor"),
])
def test_malformed_layouts_raise_value_error(tmp_path, change, text, tensors, match):
    path = _rewritten(tmp_path, change, text, tensors)
    with pytest.raises(ValueError, match=match):
        load(path)
