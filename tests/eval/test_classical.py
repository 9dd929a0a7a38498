"""Classical anchors (x264 / x265 through PyAV): low-delay P coding, rate from bytes, same metrics."""
from __future__ import annotations

import pytest
import torch

from lwdvc.cli import main
from lwdvc.data import PaddedSequence
from lwdvc.eval import GopSettings
from lwdvc.eval.classical import (
    ClassicalCodec,
    ClassicalCodecError,
    classical_curve,
    code_sequence_classical,
    sei_bytes,
)
from lwdvc.eval.report import evaluate_models, markdown_report, write_report
from lwdvc.metrics import psnr
from tests.eval.helpers import TensorSequence, moving_frames, tiny_codec, tiny_sequence

CODECS = ("x264", "x265")


@pytest.mark.parametrize("name", CODECS)
def test_low_delay_p_structure_and_rate_from_bytes(name):
    sequence = tiny_sequence(7, height=64, width=80)
    result = code_sequence_classical(ClassicalCodec(name, crfs=(30,)), sequence, 30, GopSettings(gop=3, frames=7))
    frames = result["per_frame"]
    assert frames["type"] == ["I", "P", "P", "I", "P", "P", "I"]  # I-frames exactly at the intra period
    assert result["frames"] == 7 and len(frames["bpp"]) == 7
    assert all(b > 0 for b in frames["bpp"])
    assert result["bpp"] == pytest.approx(sum(frames["bpp"]) / 7)
    assert result["sei_bytes_left_out"] > 0  # the encoders' option strings are not counted
    assert 20.0 < result["psnr"] < 60.0 and 0.5 < result["ms_ssim"] <= 1.0


@pytest.mark.parametrize("name", CODECS)
def test_clip_shorter_than_gop_and_odd_size(name):
    frames = moving_frames(3, height=37, width=51, seed=3)
    sequence = PaddedSequence(TensorSequence(frames))
    result = code_sequence_classical(ClassicalCodec(name), sequence, 27, GopSettings(gop=32, frames=96))
    assert result["frames"] == 3
    assert result["per_frame"]["type"] == ["I", "P", "P"]
    # per original pixel of the odd size
    assert result["bpp"] > 0


def test_near_lossless_round_trip_measures_the_decoded_frames():
    frames = moving_frames(2, height=32, width=48, seed=1)
    sequence = PaddedSequence(TensorSequence(frames))
    lossless = code_sequence_classical(ClassicalCodec("x264", pix_fmt="yuv444p"), sequence, 0,
                                       GopSettings(gop=8, frames=2))
    coarse = code_sequence_classical(ClassicalCodec("x264", pix_fmt="yuv444p"), sequence, 45,
                                     GopSettings(gop=8, frames=2))
    # CRF 0 in 4:4:4 only loses the RGB <-> YUV rounding; CRF 45 loses far more at far fewer bits
    assert lossless["psnr"] > 38.0
    assert coarse["psnr"] < lossless["psnr"] - 5.0 and coarse["bpp"] < lossless["bpp"] / 3
    # the same PSNR function as the learnt codecs: the mean of per-frame PSNRs
    assert lossless["psnr"] == pytest.approx(sum(lossless["per_frame"]["psnr"]) / 2)
    assert float(psnr(frames[0], frames[0] * 0.5)) < 20.0  # sanity of the metric itself


def test_curve_orders_rate_points_by_crf_and_is_monotonic():
    sequence = tiny_sequence(4, height=64, width=64)
    points = classical_curve(ClassicalCodec("x264", crfs=(40, 30, 20)), [sequence], GopSettings(gop=4, frames=4),
                             progress=False)
    assert [p["crf"] for p in points] == [40, 30, 20]
    assert points[0]["bpp"] < points[1]["bpp"] < points[2]["bpp"]
    assert points[0]["psnr"] < points[1]["psnr"] < points[2]["psnr"]


def test_sei_bytes_counts_only_sei_nal_units():
    sps, sei, idr = b"\x00\x00\x00\x01\x67" + b"a" * 5, b"\x00\x00\x01\x06" + b"b" * 9, b"\x00\x00\x01\x65" + b"c" * 20
    assert sei_bytes(sps + sei + idr, "x264") == len(sei)
    hevc_sei = b"\x00\x00\x01" + bytes([39 << 1, 1]) + b"d" * 7
    assert sei_bytes(sps + hevc_sei, "x265") == len(hevc_sei)
    assert sei_bytes(idr, "x264") == 0


def test_bad_configurations_are_named():
    with pytest.raises(ClassicalCodecError, match="preset 'warp9'"):
        ClassicalCodec("x264", preset="warp9")
    with pytest.raises(ClassicalCodecError, match="unknown classical codec 'vvc'"):
        ClassicalCodec("vvc")
    with pytest.raises(ClassicalCodecError, match=r"CRF values must be in \[0, 51\]"):
        ClassicalCodec("x265", crfs=(60,))


def test_missing_encoder_is_named(monkeypatch):
    import av

    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"libx265"})
    with pytest.raises(ClassicalCodecError, match="no libx265 encoder"):
        ClassicalCodec("x265")


def test_report_includes_anchor_and_can_use_it_as_bd_reference(tmp_path):
    torch.manual_seed(0)
    sequence = tiny_sequence(4, height=64, width=64)
    report = evaluate_models({"learnt": tiny_codec()}, [sequence], GopSettings(gop=4, frames=4), rates=[0, 3],
                             latency_repeats=0, progress=False, classical=[ClassicalCodec("x264", crfs=(45, 35))],
                             anchor="x264 medium", all_intra=True)
    intra = report["all_intra"]["learnt"]["rd"]
    assert [p["rate"] for p in intra] == [0, 3]
    assert all(kind == "I" for p in intra for kind in p["sequences"][0]["per_frame"]["type"])
    assert set(report["bd_all_intra"]["learnt"]) >= {"bd_rate", "bd_psnr"}
    assert report["anchor"] == "x264 medium"
    assert [p["crf"] for p in report["classical"]["x264 medium"]["rd"]] == [45, 35]
    assert set(report["bd"]) == {"learnt"} and set(report["bd_classical"]["x264 medium"]) == {"learnt"}
    text = markdown_report(report)
    assert "| x264 medium | CRF 45 |" in text and "no scene-cut I-frames" in text
    assert "against all-intra coding" in text and "## Quality over a GOP" in text
    paths = write_report(report, tmp_path)
    for key in ("plot", "frames_plot"):
        with open(paths[key], "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli_unknown_preset_is_one_line(capsys):
    status = main(["eval", "--anchor", "x264", "--anchor-preset", "warp9", "--frames", "1", "--out", "unused"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "warp9" in err[0]
