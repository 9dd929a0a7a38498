"""Decoder-module listing, example inputs, training forward, padding and input errors."""
from __future__ import annotations

import pytest
import torch
import torch.fx

from lwdvc.models import build
from lwdvc.models.frames import crop_frame, pad_frame

NAMES = ["dcvc", "dcvc_hem", "dcvc_hem_skip", "dcvc_hem_intra", "hyperprior"]


@pytest.fixture(scope="module", params=NAMES)
def small(request):
    torch.manual_seed(0)
    model = build(request.param, width=0.25)
    if request.param == "dcvc_hem_skip":  # starts as a copy (last conv at zero): give it a generator
        torch.nn.init.normal_(model.recon_generation_net.recon_conv.weight, std=0.05)
    return request.param, model


def test_decoder_modules_run_on_example_inputs_and_trace(small):
    name, model = small
    modules = model.decoder_modules()
    examples = model.decoder_example_inputs(64, 128)
    assert list(modules) == list(examples)
    for module_name, module in modules.items():
        assert any(module is m for m in model.children()), module_name
        inputs = examples[module_name]
        assert all(t.abs().sum() > 0 for t in inputs), f"{module_name}: example is zero"
        with torch.no_grad():
            out = module(*inputs)
            traced = torch.fx.symbolic_trace(module)
            again = traced(*inputs)
        outs = out if isinstance(out, tuple) else (out,)
        agains = again if isinstance(again, tuple) else (again,)
        for a, b in zip(outs, agains):
            assert torch.isfinite(a).all(), module_name
            torch.testing.assert_close(a, b)


def test_example_inputs_on_meta_and_bad_sizes(small):
    name, _ = small
    with torch.device("meta"):
        model = build(name, width=0.25)
    examples = model.decoder_example_inputs(128, 192)
    assert all(t.device.type == "meta" for ts in examples.values() for t in ts)
    with pytest.raises(ValueError, match="multiples of 64"):
        model.decoder_example_inputs(100, 128)


def _call_forward(name, model, frame, ref, quant="noise"):
    if name == "dcvc":
        return model(ref, frame, quant=quant)
    if name in ("dcvc_hem", "dcvc_hem_skip"):
        return model(frame, {"ref_frame": ref}, mv_y_q_scale=0.8, y_q_scale=1.2, quant=quant)
    return model(frame, quant=quant)


@pytest.mark.parametrize("size", [(64, 64), (40, 72)])
def test_training_forward_gives_rate_parts_and_gradients(small, size):
    name, model = small
    torch.manual_seed(1)
    frame, ref = torch.rand(1, 3, *size), torch.rand(1, 3, *size)
    result = _call_forward(name, model.train(), frame, ref)
    recon = result.get("recon_image", result.get("x_hat"))
    assert recon.shape == frame.shape
    parts = [k for k in result if k.startswith("bpp_")]
    assert {"bpp_y", "bpp_z"} <= set(parts)
    if name.startswith("dcvc") and name != "dcvc_hem_intra":
        assert {"bpp_mv_y", "bpp_mv_z"} <= set(parts)
    torch.testing.assert_close(result["bpp"], sum(result[k] for k in parts))
    assert all(torch.isfinite(result[k]).all() and (result[k] > 0).all() for k in parts)
    loss = result["bpp"].sum() + ((recon - frame) ** 2).mean()
    loss.backward()
    for module_name, module in model.decoder_modules().items():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if module_name != "feature_adaptor_P":  # unused when the reference is an I-frame
            assert grads and any(g.abs().sum() > 0 for g in grads), module_name
    model.zero_grad(set_to_none=True)


def test_round_mode_is_deterministic_and_noise_is_not(small):
    name, model = small
    frame, ref = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        first, second = (_call_forward(name, model, frame, ref, "round") for _ in range(2))
        noisy = [_call_forward(name, model, frame, ref, "noise")["bpp"] for _ in range(2)]
    torch.testing.assert_close(first["bpp"], second["bpp"], rtol=0, atol=0)
    assert not torch.equal(noisy[0], noisy[1])


@pytest.mark.parametrize("bad, error, match", [
    (torch.rand(1, 1, 64, 64), ValueError, "3 channels"),
    (torch.randint(0, 255, (1, 3, 64, 64)), TypeError, "floating-point"),
    (torch.rand(1, 3, 0, 64), ValueError, "empty"),
    (torch.rand(3, 64, 64), ValueError, "4-D"),
])
def test_bad_frames_raise_clear_errors(small, bad, error, match):
    name, model = small
    with pytest.raises(error, match=match):
        _call_forward(name, model, bad, torch.rand(1, 3, 64, 64))


def test_decode_rejects_unpadded_reference_and_wrong_latents():
    model = build("dcvc", width=0.25).eval()
    n, mv, m = model.channel_N, model.channel_mv, model.channel_M
    z, y = torch.zeros(1, n, 1, 2), torch.zeros(1, mv, 4, 8)
    with pytest.raises(ValueError, match="padded"):
        model.decode(torch.rand(1, 3, 60, 128), z, z, y, torch.zeros(1, m, 4, 8))
    with pytest.raises(ValueError, match="y_symbols"):
        model.decode(torch.rand(1, 3, 64, 128), z, z, y, torch.zeros(1, m + 2, 4, 8))
    hem = build("dcvc_hem", width=0.25).eval()
    with pytest.raises(ValueError, match="pair"):
        hem.decode({"ref_frame": torch.rand(1, 3, 64, 64)}, torch.zeros(1, hem.channel_N, 1, 1),
                   torch.zeros(1, hem.channel_N, 1, 1), (torch.zeros(1, 8, 4, 4),), ())


def test_pad_and_crop_follow_the_official_scripts():
    frame = torch.rand(1, 3, 70, 100)
    padded, padding = pad_frame(frame)
    assert padded.shape == (1, 3, 128, 128) and padding == (0, 28, 0, 58)
    assert torch.equal(padded[..., :70, :100], frame)
    assert padded[..., 70:, :].abs().sum() == 0 and padded[..., :, 100:].abs().sum() == 0
    assert torch.equal(crop_frame(padded, padding), frame)
    same, none = pad_frame(torch.rand(1, 3, 64, 128))
    assert none == (0, 0, 0, 0) and same.shape == (1, 3, 64, 128)


def test_decode_crops_to_output_size():
    model = build("dcvc_hem_intra", width=0.25).eval()
    n = model.N
    out = model.decode(torch.randint(-2, 3, (1, n, 1, 1)).float(),
                       (torch.randint(-3, 4, (1, n // 2, 4, 4)).float(),) * 2,
                       q_scale=1.0, output_size=(50, 60))
    assert out["x_hat"].shape == (1, 3, 50, 60)
    assert out["x_hat"].min() >= 0 and out["x_hat"].max() <= 1
