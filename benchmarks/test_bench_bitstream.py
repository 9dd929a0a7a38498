"""End-to-end decoding from a ``.lwdv`` file (entropy decoding included), teacher v4, CPU.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_bitstream.py --benchmark-only``.
An I-frame and 3 P-frames of a real clip (bigbuckbunny, resized) at rate point 2 are encoded
once; then, in turns (``interleaved_medians``, 3 rounds): decoding the file as ``lwdvc decode``
does (range decoding, oneDNN off for thread-count-independent results), and the decoder
networks alone with oneDNN on, fed the recorded symbols (no range decoding: the speed of a
decoder that gives up bit-exactness; decoding a file that way desynchronises the coder).
Reported: frames per second of each, and the share of the file decode spent in the range
decoder.
"""
from __future__ import annotations

import time

import pytest
import torch

from benchmarks.interleaved import interleaved_medians
from lwdvc.bitstream import symbols, video
from lwdvc.bitstream.video import decode_video, encode_video
from lwdvc.data import PaddedSequence
from lwdvc.data.transforms import resize_frames
from lwdvc.models import pretrained

FRAMES = 4


class _Resized:
    """The first frames of the training clip at a given size, as a frame source."""

    def __init__(self, height: int, width: int):
        from lwdvc.data import default_sequences

        clip = default_sequences("train", max_frames=FRAMES)[0]
        self.frames = [resize_frames(clip[i][None], (height, width))[0] for i in range(FRAMES)]
        self.name, self.size = f"{clip.name} {width}x{height}", (height, width)

    def __len__(self):
        return FRAMES

    def __getitem__(self, index):
        return self.frames[index]


class _RangeDecoderClock:
    """Accumulates the seconds spent inside ``SymbolReader`` decode calls."""

    def __init__(self, monkeypatch):
        self.seconds = 0.0
        original = symbols.SymbolReader._decode

        def timed(self_, *args):
            start = time.perf_counter()
            try:
                return original(self_, *args)
            finally:
                self.seconds += time.perf_counter() - start
        monkeypatch.setattr(symbols.SymbolReader, "_decode", timed)


def _recording(method, recorded: list):
    """``method`` that also appends each result to ``recorded``."""
    def record(self_, *args, **kwargs):
        value = method(self_, *args, **kwargs)
        recorded.append(value)
        return value
    return record


@pytest.mark.parametrize("size", [(256, 448), (544, 960)], ids=["448x256", "960x544"])
def test_decode_from_file(benchmark, record_median, monkeypatch, tmp_path, size):
    codec = pretrained().eval()
    sequence = PaddedSequence(_Resized(*size))
    path = tmp_path / "clip.lwdv"
    encoded = encode_video(codec, sequence, path, rate=2, gop=FRAMES, keep_recon=True)

    def from_file():
        _, frames = decode_video(path, lambda header: codec)
        return list(frames)

    decoded = from_file()
    assert all(torch.equal(a, b) for a, b in zip(decoded, encoded["recon"]))

    recorded = []
    with monkeypatch.context() as patch:  # record what the range decoder hands the networks
        for name in ("laplace", "gaussian", "factorized"):
            patch.setattr(symbols.SymbolReader, name, _recording(getattr(symbols.SymbolReader, name), recorded))
        from_file()

    def networks_with_onednn():
        import contextlib

        replay = iter(recorded)
        with monkeypatch.context() as patch:
            patch.setattr(video, "deterministic_kernels", contextlib.nullcontext)
            for name in ("laplace", "gaussian", "factorized"):
                patch.setattr(symbols.SymbolReader, name, lambda self_, *args, **kwargs: next(replay))
            return from_file()

    clock = _RangeDecoderClock(monkeypatch)
    steps = {"file decode": from_file, "networks only, oneDNN on": networks_with_onednn}
    clock.seconds = 0.0
    benchmark.group = f"bitstream decode {size[1]}x{size[0]}"
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 3), rounds=1, iterations=1)
    share = clock.seconds / (1 + 3) / medians["file decode"]  # warm-up + 3 rounds of the file decode
    for name, median in medians.items():
        extra = {"fps": FRAMES / median}
        if name == "file decode":
            extra["range_decoder_share"] = share
            extra["bpp"] = encoded["bpp"]
        record_median(benchmark, benchmark.group, name, baseline="file decode", median=median, **extra)
