"""state_dict keys, shapes and dtypes equal the official models' (order included)."""
from __future__ import annotations

import pytest

from lwdvc.models import available, build
from tests.models.golden import load_state_dict_spec

SPECS = {"dcvc": "dcvc_state_dict.json", "dcvc_hem": "dcvc_hem_state_dict.json",
         "dcvc_hem_intra": "dcvc_hem_intra_state_dict.json"}


def _entries(model):
    return [(key, list(value.shape), str(value.dtype).removeprefix("torch."))
            for key, value in model.state_dict().items()]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_state_dict_equals_official(name):
    spec = load_state_dict_spec(SPECS[name])
    model = build(name)
    expected = [(e["key"], e["shape"], e["dtype"]) for e in spec["state_dict"]]
    ours = _entries(model)
    assert len(ours) == spec["num_entries"] == len(expected)
    assert ours == expected
    buffers = {key for key, _ in model.named_buffers()}
    assert buffers == {e["key"] for e in spec["state_dict"] if e["kind"] == "buffer"}
    assert sum(p.numel() for p in model.parameters()) == spec["num_parameters"]


@pytest.mark.parametrize("name", sorted(SPECS))
def test_decoder_modules_match_official_decoder_side(name):
    spec = load_state_dict_spec(SPECS[name])
    modules = build(name).decoder_modules()
    official = {m for m in spec["decoder_side_submodules"]
                if not m.startswith("bit_estimator") and not m.startswith("bitEstimator")
                and not m.endswith("q_basic")}
    assert set(modules) == official


@pytest.mark.parametrize("name", sorted(SPECS))
def test_width_scaled_model_scales_shapes(name):
    full, small = build(name), build(name, width=0.25)
    full_sd, small_sd = full.state_dict(), small.state_dict()
    assert list(full_sd) == list(small_sd)
    ratio = sum(p.numel() for p in small.parameters()) / sum(p.numel() for p in full.parameters())
    # the encoder-side SpyNet keeps its width, so the ratio sits between 0.25**2 and 0.5
    assert ratio < 0.5
    changed = [k for k in full_sd if full_sd[k].shape != small_sd[k].shape]
    assert len(changed) > len(full_sd) // 2


def test_registry_lists_models():
    assert {"dcvc", "dcvc_hem", "dcvc_hem_intra"} <= set(available())
    with pytest.raises(KeyError, match="unknown model"):
        build("no_such_codec")


def test_hyperprior_has_the_classic_key_layout():
    model = build("hyperprior", quality=6)
    n, m = 192, 320
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {"entropy_bottleneck.quantiles": (n, 1, 3),
                "entropy_bottleneck._matrices.0": (n, 3, 1),
                "entropy_bottleneck._matrices.4": (n, 1, 3),
                "entropy_bottleneck._biases.4": (n, 1, 1),
                "entropy_bottleneck._factors.3": (n, 3, 1),
                "g_a.0.weight": (n, 3, 5, 5), "g_a.1.gamma": (n, n), "g_a.6.weight": (m, n, 5, 5),
                "g_s.0.weight": (m, n, 5, 5), "g_s.5.beta": (n,), "g_s.6.weight": (n, 3, 5, 5),
                "h_a.0.weight": (n, m, 3, 3), "h_a.4.weight": (n, n, 5, 5),
                "h_s.0.weight": (n, n, 5, 5), "h_s.4.weight": (m, n, 3, 3)}
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    prefixes = {k.split(".")[0] for k in shapes}
    assert prefixes == {"entropy_bottleneck", "g_a", "g_s", "h_a", "h_s"}
    assert len([k for k in shapes if k.startswith("entropy_bottleneck.")]) == 1 + 5 + 5 + 4
    assert build("hyperprior", quality=1).g_a[6].weight.shape == (192, 128, 5, 5)
