"""The frame-skip variant of DCVC-HEM: decoded frame = warped reference + generator output."""
from __future__ import annotations

import pytest
import torch

from lwdvc.models import VideoCodec, build
from lwdvc.models.layers import flow_warp


def _pair(seed: int = 0):
    """A DMC and a frame-skip DMC with the same random weights (non-zero last conv)."""
    torch.manual_seed(seed)
    plain = build("dcvc_hem", width=0.25).eval()
    skip = build("dcvc_hem_skip", width=0.25).eval()
    skip.load_state_dict(plain.state_dict())
    return plain, skip


def _latents(model, seed: int = 1):
    """Random quantised latents of one 64x128 P-frame: (mv_z_hat, z_hat, mv pair, y pair)."""
    g = torch.Generator().manual_seed(seed)
    n, mv, m = model.channel_N, model.channel_mv, model.channel_M
    z = lambda c: torch.randint(-2, 3, (1, c, 1, 2), generator=g).float()  # noqa: E731
    y = lambda c: tuple(torch.randint(-3, 4, (1, c // 2, 4, 8), generator=g).float() for _ in range(2))  # noqa: E731
    return z(n), z(n), y(mv), y(m)


def test_fresh_model_decodes_the_warped_reference():
    torch.manual_seed(0)
    model = build("dcvc_hem_skip", width=0.25).eval()
    assert model.recon_generation_net.recon_conv.weight.abs().sum() == 0
    ref = torch.rand(1, 3, 64, 128)
    out = model.decode({"ref_frame": ref}, *_latents(model))
    torch.testing.assert_close(out["recon_image_preclamp"], flow_warp(ref, out["mv_hat"]), rtol=0, atol=0)
    frame = torch.rand(1, 3, 50, 100)
    with torch.no_grad():
        coded = model(frame, {"ref_frame": torch.rand(1, 3, 50, 100)}, quant="round")
    assert coded["recon_image"].shape == frame.shape


def test_decode_adds_the_warped_reference_to_the_plain_model():
    plain, skip = _pair()
    ref = torch.rand(1, 3, 64, 128)
    latents = _latents(plain)
    a = plain.decode({"ref_frame": ref}, *latents)
    b = skip.decode({"ref_frame": ref}, *latents)
    torch.testing.assert_close(b["mv_hat"], a["mv_hat"], rtol=0, atol=0)
    torch.testing.assert_close(b["feature"], a["feature"], rtol=0, atol=0)
    expected = a["recon_image_preclamp"] + flow_warp(ref, a["mv_hat"])
    torch.testing.assert_close(b["recon_image_preclamp"], expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b["recon_image"], expected.clamp(0, 1), rtol=1e-6, atol=1e-6)


def test_training_forward_matches_decode_in_round_mode():
    """forward(quant="round") reconstructs what decode() gives for the same rounded latents."""
    plain, skip = _pair(2)
    frame, ref = torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        outs = [m(frame, {"ref_frame": ref}, quant="round") for m in (plain, skip)]
    diff = outs[1]["recon_image"] - outs[0]["recon_image"]
    # the skip adds the warped reference, which is not all zeros and not the generator output
    assert diff.abs().mean() > 0.05
    torch.testing.assert_close(outs[1]["bpp"], outs[0]["bpp"], rtol=0, atol=0)


def test_start_as_copy_zeroes_the_last_conv_of_loaded_weights():
    plain, skip = _pair(3)
    assert skip.recon_generation_net.recon_conv.weight.abs().sum() > 0
    skip.start_as_copy()
    conv = skip.recon_generation_net.recon_conv
    assert conv.weight.abs().sum() == 0 and conv.bias.abs().sum() == 0
    assert skip.recon_generation_net.first_conv.weight.abs().sum() > 0


def test_family_builds_and_keeps_dmc_keys():
    codec = VideoCodec("dcvc_hem_skip", width=0.25)
    assert codec.inter.frame_skip and not VideoCodec("dcvc_hem", width=0.25).inter.frame_skip
    plain = VideoCodec("dcvc_hem", width=0.25)
    assert {k: v.shape for k, v in codec.state_dict().items()} == \
        {k: v.shape for k, v in plain.state_dict().items()}


@pytest.mark.parametrize("name", ["dcvc_hem", "dcvc_hem_skip"])
def test_decoder_modules_are_the_same(name):
    assert list(build(name, width=0.25).decoder_modules()) == list(build("dcvc_hem", width=0.25).decoder_modules())
