"""Codecs with an optimised P-frame decoder code like their source (fp32 exact, bf16 bounded)."""
from __future__ import annotations

import pytest
import torch

from lwdvc.eval import GopSettings, code_sequence, decoder_cost, optimize_codec
from lwdvc.models import VideoCodec
from tests.eval.helpers import moving_frames, tiny_codec, tiny_sequence


def _p_frame(codec, frames: torch.Tensor) -> dict:
    rate = torch.tensor([0, 3])
    with torch.no_grad():
        ref = codec.code_intra(frames[0:1].expand(2, -1, -1, -1), rate, quant="round")["recon"].clamp(0, 1)
        return codec.code_inter(frames[1:2].expand(2, -1, -1, -1), codec.reference_state(ref), rate, quant="round")


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.bfloat16, 5e-2)])
def test_optimized_codec_codes_like_its_source_at_another_frame_size(dtype, tolerance):
    codec = tiny_codec()
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    fast = optimize_codec(codec, dtype, example_size=(64, 64))
    assert all(torch.equal(before[k], v) for k, v in codec.state_dict().items())  # source untouched
    routed = fast.inter.decoder_modules()["recon_generation_net"]
    assert type(routed) is type(codec.inter.decoder_modules()["recon_generation_net"])  # stays in place
    assert routed.forward is routed._optimised and type(routed._optimised) is not type(routed)
    assert fast.state_dict().keys() == codec.state_dict().keys()  # the optimised copy is not registered
    frames = moving_frames(2, height=128, width=192, seed=3)  # not the traced 64x64
    plain, optimized = _p_frame(codec, frames), _p_frame(fast, frames)
    error = (plain["recon"] - optimized["recon"].float()).norm() / plain["recon"].norm()
    assert optimized["recon"].dtype == torch.float32
    assert float(error) <= tolerance
    assert torch.allclose(plain["bpp"], optimized["bpp"], rtol=tolerance)


def test_optimized_codec_rd_and_cost_report_the_source_macs():
    codec = tiny_codec()
    fast = optimize_codec(codec)
    sequence = tiny_sequence(3)
    plain = code_sequence(codec, sequence, rate=1, settings=GopSettings(gop=3, frames=3))
    optimized = code_sequence(fast, sequence, rate=1, settings=GopSettings(gop=3, frames=3))
    assert optimized["psnr"] == pytest.approx(plain["psnr"], abs=1e-3)
    cost = decoder_cost(fast.inter, 64, 64, repeats=1, macs_of=codec.inter)
    assert cost["macs"] == decoder_cost(codec.inter, 64, 64, repeats=1)["macs"] > 0
    assert cost["latency"]["median_ms"] > 0


def test_optimize_codec_rejects_a_model_without_a_decoder_scope():
    with pytest.raises(TypeError, match="decoder_modules"):
        optimize_codec(torch.nn.Linear(2, 2))


def test_optimized_fvc_still_encodes_with_its_decoder_side_aligner_routed():
    """FVC's aligner is one decoder module but also serves the encoder (motion estimation)."""
    torch.manual_seed(0)
    codec = VideoCodec("fvc", width=0.125).eval()
    fast = optimize_codec(codec)
    aligner = fast.inter.aligner
    assert aligner.forward is aligner._optimised and hasattr(aligner, "motion_estimation")
    sequence = tiny_sequence(2)
    plain = code_sequence(codec, sequence, rate=0, settings=GopSettings(gop=2, frames=2))
    optimized = code_sequence(fast, sequence, rate=0, settings=GopSettings(gop=2, frames=2))
    assert optimized["psnr"] == pytest.approx(plain["psnr"], abs=1e-3)
    assert optimized["bpp"] == pytest.approx(plain["bpp"], rel=1e-4)
