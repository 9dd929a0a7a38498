"""GOP coding, RD curves and BD metrics."""
from __future__ import annotations

import pytest
import torch

from lwdvc.eval import GopSettings, bd_metrics, code_sequence, rd_curve
from lwdvc.metrics import psnr

from .helpers import tiny_codec, tiny_sequence


def test_gop_structure_and_metrics_match_a_direct_computation():
    codec, sequence = tiny_codec(), tiny_sequence(5)
    result = code_sequence(codec, sequence, rate=1, settings=GopSettings(gop=3, frames=5))
    per_frame = result["per_frame"]
    assert per_frame["type"] == ["I", "P", "P", "I", "P"]
    assert result["frames"] == 5 and sequence.original_size == (72, 88)
    # the I-frame: code the padded frame directly, crop, measure at the original size
    with torch.no_grad():
        out = codec.code_intra(sequence[0].unsqueeze(0), torch.tensor([1]), quant="round")
    decoded = sequence.crop(out["recon"].clamp(0, 1))[0]
    assert per_frame["psnr"][0] == pytest.approx(float(psnr(decoded, sequence.original(0))), abs=1e-9)
    assert per_frame["bpp"][0] == pytest.approx(float(out["bpp"][0]) * 128 * 128 / (72 * 88), rel=1e-6)
    # frame 3 starts a new GOP: same I-frame cost as coding it alone
    with torch.no_grad():
        again = codec.code_intra(sequence[3].unsqueeze(0), torch.tensor([1]), quant="round")
    assert per_frame["bpp"][3] == pytest.approx(float(again["bpp"][0]) * 128 * 128 / (72 * 88), rel=1e-6)
    assert result["bpp"] == pytest.approx(sum(per_frame["bpp"]) / 5)
    assert all(0.0 < v <= 1.0 for v in per_frame["ms_ssim"])
    assert all(v > 0 for v in per_frame["bpp"])


def test_frames_limit_and_bad_rate():
    codec, sequence = tiny_codec(), tiny_sequence(3)
    assert code_sequence(codec, sequence, 0, GopSettings(gop=8, frames=2))["frames"] == 2
    with pytest.raises(ValueError, match="rate point 4 out of range"):
        code_sequence(codec, sequence, 4, GopSettings())
    with pytest.raises(ValueError, match="gop and frames must be >= 1"):
        GopSettings(gop=0)


def test_rd_curve_rate_points_differ_and_average_sequences():
    codec = tiny_codec()
    sequences = [tiny_sequence(2, seed=1), tiny_sequence(2, seed=2)]
    points = rd_curve(codec, sequences, [0, 3], GopSettings(gop=2, frames=2), progress=False)
    assert [p["rate"] for p in points] == [0, 3]
    for p in points:
        assert p["psnr"] == pytest.approx(sum(s["psnr"] for s in p["sequences"]) / 2)
    # the finest quantiser (rate 3) spends more bits than the coarsest (rate 0)
    assert points[1]["bpp"] > points[0]["bpp"]
    with pytest.raises(ValueError, match="no test sequences"):
        rd_curve(codec, [], [0], GopSettings())


def _points(bpp, psnr_values):
    return [{"bpp": b, "psnr": q, "psnr_y": q + 1.0} for b, q in zip(bpp, psnr_values)]


def test_bd_metrics_of_shifted_curves():
    anchor = _points([0.1, 0.2, 0.4, 0.8], [30.0, 32.0, 34.0, 36.0])
    same = bd_metrics(anchor, anchor)
    assert same["bd_rate"] == pytest.approx(0.0, abs=1e-9) and same["bd_psnr"] == pytest.approx(0.0, abs=1e-9)
    better = bd_metrics(anchor, _points([0.1, 0.2, 0.4, 0.8], [30.5, 32.5, 34.5, 36.5]))
    assert better["bd_psnr"] == pytest.approx(0.5, abs=1e-6) and better["bd_psnr_y"] == pytest.approx(0.5, abs=1e-6)
    assert better["bd_rate"] < 0
    half_rate = bd_metrics(anchor, _points([0.05, 0.1, 0.2, 0.4], [30.0, 32.0, 34.0, 36.0]))
    assert half_rate["bd_rate"] == pytest.approx(-50.0, abs=1e-6)
    disjoint = bd_metrics(anchor, _points([1, 2, 3, 4], [50.0, 51.0, 52.0, 53.0]))
    assert disjoint["bd_rate"] is None and "bd_rate_error" in disjoint
