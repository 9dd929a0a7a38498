"""Compacted decoders code real files: saved, loaded by path, decoded bit-exactly, told apart from dense."""
import copy

import pytest
import torch

from lwdvc.bitstream import BitstreamError
from lwdvc.bitstream.video import decode_video, encode_video, model_fingerprint
from lwdvc.commands.common import load_codec
from lwdvc.data import PaddedSequence
from lwdvc.models import VideoCodec
from lwdvc.models.pretrained import save_compacted
from lwdvc.prune import Pruner, finalize
from lwdvc_kernels.masking import has_masks

from .test_video import _Frames


def _compacted(family: str) -> tuple[VideoCodec, VideoCodec]:
    """(dense codec, the same codec with its P-frame decoder pruned by half and compacted)."""
    torch.manual_seed(0)
    dense = VideoCodec(family, width=0.25, intra_width=0.25).eval()
    pruner = Pruner.for_codec(copy.deepcopy(dense.inter), frame_size=(64, 64), target_mac_reduction=0.5,
                              total_steps=4, ramp_steps=0)
    pruner.step()
    small = copy.deepcopy(dense)
    small.inter = finalize(pruner, verify=True)
    return dense, small.eval()


@pytest.mark.parametrize("family", ["dcvc_hem_skip", "dcvc", "fvc"])
def test_a_compacted_model_loaded_from_its_file_decodes_its_encoder_bit_exactly(tmp_path, family):
    dense, small = _compacted(family)
    assert not has_masks(small)
    assert sum(p.numel() for p in small.inter.parameters()) < sum(p.numel() for p in dense.inter.parameters())
    json_path, _ = save_compacted(small, tmp_path / "small")
    loaded = load_codec(json_path)
    assert model_fingerprint(loaded) == model_fingerprint(small) != model_fingerprint(dense)

    sequence = PaddedSequence(_Frames(count=4, height=40, width=56))
    path = tmp_path / "v.lwdv"
    result = encode_video(small, sequence, path, rate=small.num_rates - 1, gop=4, model=json_path, keep_recon=True)
    assert result["per_frame"]["type"] == ["I", "P", "P", "P"]
    header, frames = decode_video(path, lambda header: loaded)
    decoded = list(frames)
    assert len(decoded) == 4
    for recon, frame in zip(result["recon"], decoded):
        assert torch.equal(recon, frame)
    with pytest.raises(BitstreamError, match="model"):
        list(decode_video(path, lambda header: dense)[1])
