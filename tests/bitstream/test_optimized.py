"""Files coded with optimised P-frame decoder networks: bit-exact with 1 and 2 threads, refused by others."""
import pytest
import torch

from lwdvc.bitstream import BitstreamError
from lwdvc.bitstream.video import decode_video, encode_video
from lwdvc.data import PaddedSequence
from lwdvc.eval import optimize_codec
from lwdvc.models import VideoCodec

from .test_video import _Frames


@pytest.mark.parametrize("family,dtype", [("dcvc_hem", torch.float32), ("dcvc_hem", torch.bfloat16),
                                          ("dcvc", torch.bfloat16), ("fvc", torch.bfloat16)])
def test_an_optimised_decoder_decodes_its_encoder_bit_exactly(tmp_path, family, dtype):
    torch.manual_seed(0)
    dense = VideoCodec(family, width=0.25, intra_width=0.25).eval()
    fast = optimize_codec(dense, dtype)
    assert fast.optimized_decoder == {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    sequence = PaddedSequence(_Frames(count=4, height=40, width=56))
    path = tmp_path / "v.lwdv"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = encode_video(fast, sequence, path, rate=dense.num_rates - 1, gop=4, keep_recon=True)
        torch.set_num_threads(1)
        header, frames = decode_video(path, lambda header: optimize_codec(dense, dtype))
        decoded = list(frames)
    finally:
        torch.set_num_threads(threads)
    assert header["optimize"] == fast.optimized_decoder
    assert len(decoded) == 4 and all(torch.equal(a, b) for a, b in zip(result["recon"], decoded))
    # the P-frames really ran other networks: the dense model's reconstruction differs
    dense_path = tmp_path / "dense.lwdv"
    dense_result = encode_video(dense, sequence, dense_path, rate=dense.num_rates - 1, gop=4, keep_recon=True)
    assert not torch.equal(dense_result["recon"][3], result["recon"][3])
    with pytest.raises(BitstreamError, match=f"optimised in {fast.optimized_decoder}.*not as trained"):
        decode_video(path, lambda header: dense)
    with pytest.raises(BitstreamError, match="as trained \\(no --optimize\\).*not optimised in"):
        decode_video(dense_path, lambda header: fast)
