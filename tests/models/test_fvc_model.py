"""FVC model: official state_dict layout, checkpoint loading, training forward, encode/decode,
width scaling, padding and input errors. Small widths and frames keep these fast."""
from __future__ import annotations

import pytest
import torch
import torch.fx

from lwdvc.models import build, load_official
from lwdvc.models.fvc import gaussian_bin_probability
from lwdvc.models.zoo import StateDictMismatchError
from tests.models.golden import fill_deterministic, load_state_dict_spec

BPP_PARTS = ("bpp_mv_y", "bpp_mv_z", "bpp_y", "bpp_z")


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return fill_deterministic(build("fvc", width=0.25), "fvc")


def test_state_dict_equals_official_layout():
    spec = load_state_dict_spec("fvc_state_dict.json")
    state = build("fvc").state_dict()
    ours = [(key, list(value.shape), str(value.dtype).removeprefix("torch.")) for key, value in state.items()]
    official = [(entry["key"], entry["shape"], entry["dtype"]) for entry in spec["state_dict"]]
    assert ours == official
    assert sum(value.numel() for value in state.values()) == spec["num_parameters"]


def test_load_official_roundtrip_and_mismatch_errors(tmp_path, small):
    reference = small.state_dict()
    path = tmp_path / "fvc.model"
    torch.save({"net": {f"module.{key}": value for key, value in reference.items()}}, path)
    loaded = load_official("fvc", path, width=0.25)
    assert not loaded.training
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, reference[key]), key

    broken = dict(reference)
    del broken["aligner.deformable_convolution.conv_offset.bias"]
    broken["Decoder.deconv1.weight"] = torch.zeros(1)
    broken["extra.weight"] = torch.zeros(1)
    torch.save(broken, path)
    with pytest.raises(StateDictMismatchError) as error:
        load_official("fvc", path, width=0.25)
    message = str(error.value)
    for key in ("aligner.deformable_convolution.conv_offset.bias", "Decoder.deconv1.weight", "extra.weight"):
        assert key in message


def test_width_scaling_keeps_keys_and_scales_channels(small):
    full = build("fvc").state_dict()
    scaled = small.state_dict()
    assert list(full) == list(scaled)
    assert (small.channel_feature, small.channel_offset) == (16, 32)
    assert scaled["aligner.deformable_convolution.weight"].shape == (16, 16, 3, 3)
    assert scaled["aligner.deformable_convolution.conv_offset.weight"].shape == (144, 16, 3, 3)
    assert scaled["EntropyCoding_offsetf.parameters_net.conv1.weight"].shape == (128, 64, 1, 1)
    with pytest.raises(ValueError, match="width"):
        build("fvc", width=0)


def test_training_forward_shapes_rate_and_gradients(small):
    small.train()
    torch.manual_seed(1)
    ref, frame = torch.rand(2, 3, 40, 56), torch.rand(2, 3, 40, 56)  # padded to 64x64 inside
    out = small(ref, frame)
    for key in ("recon_image", "align_image", "input_recon"):
        assert out[key].shape == frame.shape, key
    for key in BPP_PARTS:
        assert out[key].shape == (2,) and torch.isfinite(out[key]).all() and (out[key] > 0).all(), key
    torch.testing.assert_close(out["bpp"], sum(out[key] for key in BPP_PARTS))
    loss = out["bpp"].mean() + 256 * (out["recon_image"] - frame).square().mean()
    loss.backward()
    for name in ("Decoder.deconv1.weight", "aligner.deformable_convolution.weight",
                 "aligner.deformable_convolution.conv_offset.weight", "resDecoder.deconv1.weight",
                 "EntropyCoding_offsetf.parameters_net.conv3.weight", "EntropyCoding_residualz.f4.h",
                 "aligner.offset_conv1.weight", "resPriorEncoder.conv1.weight"):
        grad = small.get_submodule(name.rsplit(".", 1)[0]).get_parameter(name.rsplit(".", 1)[1]).grad
        assert grad is not None and grad.abs().sum() > 0, name
    small.zero_grad()
    small.eval()


def test_noise_and_straight_through_quantisation(small):
    small.train()
    torch.manual_seed(2)
    ref, frame = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    noisy_a, noisy_b = small(ref, frame), small(ref, frame)
    assert not torch.equal(noisy_a["bpp"], noisy_b["bpp"])  # fresh noise every call
    ste = small(ref, frame, quant="ste")
    rounded = small(ref, frame, quant="round")
    torch.testing.assert_close(ste["bpp"], rounded["bpp"])  # same forward values
    assert ste["recon_image"].requires_grad
    with pytest.raises(ValueError, match="quant"):
        small(ref, frame, quant="uniform")
    small.eval()


def test_encode_decode_matches_eval_forward(small):
    """Closed loop: decode(encode(x)) is the eval forward's reconstruction, and the rate the
    eval forward reports is the one the decoded Gaussian parameters give to the latents."""
    small.eval()
    torch.manual_seed(3)
    ref, frame = torch.rand(1, 3, 40, 72), torch.rand(1, 3, 40, 72)
    with torch.no_grad():
        forward = small(ref, frame)
    coded = small.encode(ref, frame)
    assert coded["ref_frame_padded"].shape == (1, 3, 64, 128)
    assert coded["q_offset"].shape == (1, 32, 4, 8) and coded["q_offset_prior"].shape == (1, 32, 1, 2)
    for key in ("q_offset", "q_residual", "q_offset_prior", "q_residual_prior"):
        assert torch.equal(coded[key], coded[key].round()), key
    decoded = small.decode(coded["ref_frame_padded"], coded["q_offset"], coded["q_residual"],
                           coded["q_offset_prior"], coded["q_residual_prior"], output_size=coded["output_size"])
    assert decoded["recon_image"].shape == frame.shape
    torch.testing.assert_close(decoded["recon_image"], forward["recon_image"])
    for latent, part in (("offset", "bpp_mv_y"), ("residual", "bpp_y")):
        probability = gaussian_bin_probability(coded[f"q_{latent}"], decoded[f"{latent}_means"],
                                               decoded[f"{latent}_scales"])
        bits = torch.clamp(-torch.log2(probability), 0, 50).sum() / (40 * 72)  # eval: no 1e-5
        torch.testing.assert_close(bits, forward[part][0])


def test_decoder_example_inputs_run_and_trace(small):
    examples = small.decoder_example_inputs(64, 128)
    modules = small.decoder_modules()
    assert list(modules) == list(examples)
    assert modules["aligner"] is small.aligner  # its decoder side as one module
    with torch.no_grad():
        for name, module in modules.items():
            expected = module(*examples[name])
            traced = torch.fx.symbolic_trace(module)
            torch.testing.assert_close(traced(*examples[name]), expected, msg=name)
    assert examples["Decoder"][0].shape == (1, 16, 32, 64)
    with pytest.raises(ValueError, match="multiples of 64"):
        small.decoder_example_inputs(100, 128)


def test_bad_inputs_raise_clear_errors(small):
    frame = torch.rand(1, 3, 64, 64)
    with pytest.raises(TypeError, match="floating"):
        small(frame, (frame * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="channels"):
        small(frame, torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match="same shape"):
        small(frame, torch.rand(1, 3, 64, 128))
    q = torch.zeros(1, 32, 4, 4)
    with pytest.raises(ValueError, match="padded to multiples of 64"):
        small.decode(torch.rand(1, 3, 60, 64), q, q)
    with pytest.raises(ValueError, match="q_offset"):
        small.decode(frame, torch.zeros(1, 16, 4, 4), q)
    with pytest.raises(ValueError, match="q_residual"):
        small.decode(frame, q, torch.zeros(1, 32, 2, 2))
    with pytest.raises(ValueError, match="q_offset_prior"):
        small.decode(frame, q, q, torch.zeros(1, 32, 4, 4))
    with pytest.raises(ValueError, match="batch"):
        small.decode(frame, torch.zeros(2, 32, 4, 4), torch.zeros(2, 32, 4, 4))


def test_decoder_modules_match_official_decoder_side(small):
    """The official decoder-side list, without the factorized CDFs (no convolutions)."""
    spec = load_state_dict_spec("fvc_state_dict.json")
    official = set()
    for entry in spec["decoder_side_submodules"]:  # e.g. "EntropyCoding_offsetf (parameters_net)"
        name, _, note = entry.partition(" (")
        if note.startswith("Bitparm"):
            continue
        official.add(f"{name}.parameters_net" if note.startswith("parameters_net") else name)
    ours = small.decoder_modules()
    # the aligner's decoder-side layers form one module of ours (its forward runs exactly them)
    assert {name if name in ours else name.rpartition(".")[0] for name in official} == set(ours)
    executed = set()
    hooks = [child.register_forward_hook(lambda *_, n=name: executed.add(f"aligner.{n}"))
             for name, child in small.aligner.named_children()]
    with torch.no_grad():
        small.aligner(*small.decoder_example_inputs(64, 64)["aligner"])
    for hook in hooks:
        hook.remove()
    assert executed == {name for name in official if name.startswith("aligner.")}
