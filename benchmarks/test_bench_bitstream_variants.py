"""Decoding ``.lwdv`` files end to end: dense, compacted and optimised decoders of the three codecs.

Run: ``PYTHONPATH=python:. python -m pytest benchmarks/test_bench_bitstream_variants.py --benchmark-only``.
Per codec family and frame size, an I-frame and 3 P-frames of a real clip (bigbuckbunny,
resized) are encoded at the highest rate point by four decoders, each writing its own file (a
file decodes only with the networks that encoded it): the dense model, the model with its
P-frame decoder pruned to 65 % fewer MACs and compacted (``Pruner.for_codec`` masks after one
step, then ``finalize``), and the compacted model with its P-frame decoder optimised
(``optimize_codec``) in fp32 and bf16. The four file decodes run in turns
(``interleaved_medians``, 3 rounds); each is checked bit-exact against its encoder first.
Reported: frames per second and the share of the time spent in the range decoder.
DCVC-HEM is the shipped teacher (v4); DCVC and FVC run at the same width (0.25) with seeded
random weights - speed depends on the shapes, not on the weights.
"""
from __future__ import annotations

import copy
import time

import pytest
import torch

from benchmarks.interleaved import interleaved_medians
from benchmarks.test_bench_bitstream import FRAMES, _RangeDecoderClock, _Resized
from lwdvc.bitstream.video import decode_video, encode_video
from lwdvc.data import PaddedSequence
from lwdvc.eval import optimize_codec
from lwdvc.models import VideoCodec, pretrained
from lwdvc.prune import Pruner, finalize

REDUCTION = 0.65


def _dense(family: str) -> VideoCodec:
    if family == "dcvc_hem":
        return pretrained().eval()
    torch.manual_seed(0)
    return VideoCodec(family, width=0.25, intra_width=0.25).eval()


def _compacted(dense: VideoCodec) -> VideoCodec:
    pruner = Pruner.for_codec(copy.deepcopy(dense.inter), frame_size=(64, 64), target_mac_reduction=REDUCTION,
                              total_steps=1, ramp_steps=0)
    pruner.step()
    small = copy.deepcopy(dense)
    small.inter = finalize(pruner, verify=True)
    return small.eval()


@pytest.mark.parametrize("size", [(256, 448), (544, 960)], ids=["448x256", "960x544"])
@pytest.mark.parametrize("family", ["dcvc_hem", "dcvc", "fvc"])
def test_decode_variants_from_file(benchmark, record_median, monkeypatch, tmp_path, family, size):
    dense = _dense(family)
    small = _compacted(dense)
    variants = {"dense": dense, "compacted": small, "compacted + optimize fp32": optimize_codec(small, torch.float32),
                "compacted + optimize bf16": optimize_codec(small, torch.bfloat16)}
    sequence = PaddedSequence(_Resized(*size))
    steps, bpp = {}, {}
    for index, (name, codec) in enumerate(variants.items()):
        path = tmp_path / f"{index}.lwdv"
        encoded = encode_video(codec, sequence, path, rate=codec.num_rates - 1, gop=FRAMES, keep_recon=True)
        bpp[name] = encoded["bpp"]

        def from_file(path=path, codec=codec):
            return list(decode_video(path, lambda header: codec)[1])

        assert all(torch.equal(a, b) for a, b in zip(from_file(), encoded["recon"])), name
        steps[name] = from_file
    benchmark.group = f"file decode {family} {size[1]}x{size[0]}"
    shares = {}
    for name, step in steps.items():  # range-decoder share of each variant, from one decode on its own
        clock = _RangeDecoderClock(monkeypatch)
        start = time.perf_counter()
        step()
        shares[name] = clock.seconds / (time.perf_counter() - start)
        monkeypatch.undo()
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 3), rounds=1, iterations=1)
    for name, median in medians.items():
        record_median(benchmark, benchmark.group, name, baseline="dense", median=median, fps=FRAMES / median,
                      range_decoder_share=shares[name], bpp=bpp[name])
