"""Encode to a file and decode it: bit-exact, with 1 and 2 threads, rates near eval's estimate."""
import pytest
import torch

from lwdvc.bitstream import BitstreamError
from lwdvc.bitstream.container import read_bitstream
from lwdvc.bitstream.video import decode_video, encode_video, model_fingerprint
from lwdvc.data import PaddedSequence
from lwdvc.data.sequence import FrameSequence
from lwdvc.errors import BadArgumentError
from lwdvc.eval.sequence import GopSettings, code_sequence
from lwdvc.models import VideoCodec


class _Frames(FrameSequence):
    """Smooth random frames that move by one pixel per frame (odd size on purpose)."""

    def __init__(self, count=5, height=50, width=70, seed=0):
        generator = torch.Generator().manual_seed(seed)
        base = torch.rand(3, height // 5 + 2, width // 5 + 2, generator=generator)
        big = torch.nn.functional.interpolate(base[None], size=(height + count, width + count),
                                              mode="bilinear", align_corners=False)[0]
        super().__init__()
        self.clip = [big[:, t:t + height, t:t + width].contiguous() for t in range(count)]
        self.name, self.source_size, self._length = "moving", (height, width), count

    def _read_frame(self, index):
        return self.clip[index]


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return VideoCodec("dcvc_hem_skip", width=0.25, intra_width=0.25).eval()


def _decode_all(path, codec):
    header, frames = decode_video(path, lambda header: codec)
    return header, list(frames)


def test_decoding_reproduces_the_encoder_bit_exactly_with_one_and_two_threads(tmp_path, codec):
    sequence = PaddedSequence(_Frames())
    path = tmp_path / "v.lwdv"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = encode_video(codec, sequence, path, rate=1, gop=3, model="random", keep_recon=True)
        decoded = {}
        for count in (1, 2):
            torch.set_num_threads(count)
            header, decoded[count] = _decode_all(path, codec)
    finally:
        torch.set_num_threads(threads)
    assert header["frames"] == 5 and (header["height"], header["width"]) == (50, 70)
    assert result["per_frame"]["type"] == ["I", "P", "P", "I", "P"]
    for count in (1, 2):
        assert len(decoded[count]) == 5
        for recon, frame in zip(result["recon"], decoded[count]):
            assert frame.shape == (3, 50, 70) and torch.equal(recon, frame)
    assert result["bytes"] == path.stat().st_size


def test_file_rate_and_quality_match_the_estimate_on_real_footage(tmp_path):
    """The shipped teacher on the held-out clip: the file's bits within 3 % (plus the header) of
    eval's estimate, PSNR equal to eval's within 0.05 dB."""
    from lwdvc.data import default_sequences
    from lwdvc.metrics import psnr
    from lwdvc.models import pretrained

    teacher = pretrained().eval()
    sequence = PaddedSequence(default_sequences("test", max_frames=3)[0])
    result = encode_video(teacher, sequence, tmp_path / "v.lwdv", rate=3, gop=8, model="pretrained",
                          keep_recon=True)
    estimate = code_sequence(teacher, sequence, 3, GopSettings(gop=8, frames=3))
    height, width = sequence.original_size
    payload_bits = sum(result["per_frame"]["bits"])  # the file less its header and frame records
    estimated_bits = sum(estimate["per_frame"]["bpp"]) * height * width
    assert abs(payload_bits - estimated_bits) <= 0.03 * estimated_bits
    for index, recon in enumerate(result["recon"]):
        assert abs(float(psnr(recon, sequence.original(index))) - estimate["per_frame"]["psnr"][index]) < 0.05


def test_a_file_of_another_model_is_refused(tmp_path, codec):
    path = tmp_path / "v.lwdv"
    encode_video(codec, PaddedSequence(_Frames(count=2)), path, rate=0, gop=4, model="random")
    other = VideoCodec("dcvc_hem_skip", width=0.25, intra_width=0.25)
    assert model_fingerprint(other) != model_fingerprint(codec)
    with pytest.raises(BitstreamError, match="another model"):
        decode_video(path, lambda header: other)


def test_settings_are_checked_before_coding(tmp_path, codec):
    sequence = PaddedSequence(_Frames(count=2))
    with pytest.raises(BadArgumentError, match="--rate 4"):
        encode_video(codec, sequence, tmp_path / "v.lwdv", rate=4, gop=4)
    with pytest.raises(BadArgumentError, match="--gop"):
        encode_video(codec, sequence, tmp_path / "v.lwdv", rate=0, gop=0)
    class Other(torch.nn.Module):
        family, num_rates, training = "other", 1, False

    with pytest.raises(BadArgumentError, match="the other family has no entropy coder"):
        encode_video(Other(), sequence, tmp_path / "v.lwdv", rate=0, gop=4)
    assert not (tmp_path / "v.lwdv").exists()


def test_an_interrupted_encode_leaves_no_file(tmp_path, codec):
    sequence = PaddedSequence(_Frames(count=3))
    calls = []

    def stop(_):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_video(codec, sequence, tmp_path / "v.lwdv", rate=0, gop=4, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_payload_is_caught_by_its_checksum(tmp_path, codec):
    path = tmp_path / "v.lwdv"
    encode_video(codec, PaddedSequence(_Frames(count=2)), path, rate=0, gop=4)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x11
    path.write_bytes(bytes(data))
    with pytest.raises(BitstreamError, match="frame 1's checksum"):
        read_bitstream(path)


def test_eval_with_bitstreams_measures_the_decoded_frames(codec):
    from lwdvc.eval.sequence import code_sequence_via_file

    sequence = PaddedSequence(_Frames(count=3))
    settings = GopSettings(gop=2, frames=3)
    real = code_sequence_via_file(codec, sequence, 1, settings)
    estimate = code_sequence(codec, sequence, 1, settings)
    assert real["per_frame"]["type"] == ["I", "P", "I"]
    for a, b in zip(real["per_frame"]["psnr"], estimate["per_frame"]["psnr"]):
        assert abs(a - b) < 0.05
    # the file's rate includes the header (about 400 bytes), heavy on a 50x70 clip of 3 frames
    assert real["bpp"] > 0.9 * estimate["bpp"]


@pytest.mark.parametrize("family", ["dcvc", "fvc"])
def test_fixed_rate_families_decode_bit_exactly(tmp_path, family):
    """DCVC (P-frames along the autoregressive wavefronts) and FVC (deformable alignment)."""
    torch.manual_seed(3)
    codec = VideoCodec(family, width=0.25).eval()
    sequence = PaddedSequence(_Frames(count=3, height=40, width=72, seed=4))
    path = tmp_path / "d.lwdv"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        result = encode_video(codec, sequence, path, rate=0, gop=4, model=f"random {family}", keep_recon=True)
        torch.set_num_threads(1)
        _, frames = _decode_all(path, codec)
    finally:
        torch.set_num_threads(threads)
    assert result["per_frame"]["type"] == ["I", "P", "P"]
    assert all(torch.equal(a, b) for a, b in zip(result["recon"], frames))
    estimate = code_sequence(codec, sequence, 0, GopSettings(gop=4, frames=3))
    from lwdvc.metrics import psnr

    for index, recon in enumerate(result["recon"]):
        assert abs(float(psnr(recon, sequence.original(index))) - estimate["per_frame"]["psnr"][index]) < 0.5
    with pytest.raises(BadArgumentError, match="--rate 1"):
        encode_video(codec, sequence, path, rate=1, gop=4)
