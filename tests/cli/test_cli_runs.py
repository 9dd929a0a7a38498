"""The commands end to end on a tiny model and a tiny video."""
from __future__ import annotations

import json
import os

import pytest

from lwdvc.cli import main

from .conftest import write_yuv


def test_eval_writes_a_report(capsys, tiny_checkpoint, tmp_path):
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=2)
    out = tmp_path / "report"
    assert main(["eval", tiny_checkpoint, tiny_checkpoint, "--labels", "a", "b", "--video", video, "--gop", "2",
                 "--frames", "2", "--rates", "0", "3", "--latency-repeats", "1", "--out", str(out),
                 "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [p["rate"] for p in report["models"]["a"]["rd"]] == [0, 3]
    assert report["settings"]["sequences"][0] == {"name": "clip_96x80", "height": 80, "width": 96, "frames": 2}
    assert report["bd"]["b"]["bd_psnr"] == pytest.approx(0.0, abs=1e-9)
    assert (out / "report_rd.png").stat().st_size > 1000
    assert "| a | 3 |" in capsys.readouterr().out


def test_eval_of_an_optimized_decoder(tiny_checkpoint, tmp_path):
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=2)
    out = tmp_path / "report"
    assert main(["eval", tiny_checkpoint, "--labels", "a", "--optimize", "fp32", "--video", video, "--gop", "2",
                 "--frames", "2", "--rates", "0", "3", "--latency-repeats", "1", "--out", str(out),
                 "--no-progress"]) == 0
    report = json.loads((out / "report.json").read_text())
    plain, fast = report["models"]["a"], report["models"]["a [optimized fp32]"]
    assert fast["decoder"]["macs"] == plain["decoder"]["macs"] > 0
    assert [p["psnr"] for p in fast["rd"]] == pytest.approx([p["psnr"] for p in plain["rd"]], abs=1e-3)
    assert report["bd"]["a [optimized fp32]"]["bd_psnr"] == pytest.approx(0.0, abs=1e-3)


def test_bench_prints_a_table(capsys, tiny_checkpoint):
    assert main(["bench", tiny_checkpoint, "--height", "64", "--width", "64", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "| model | MACs (G)" in out and f"| {tiny_checkpoint} |" in out


@pytest.mark.slow
def test_prune_compact_and_eval_the_result(capsys, tiny_checkpoint, tmp_path):
    out = tmp_path / "pruned"
    assert main(["prune", tiny_checkpoint, "--out", str(out), "--steps", "3", "--crop", "64", "--batch-size", "2",
                 "--train-max-side", "160", "--train-max-frames", "3", "--threads", "1", "--no-progress"]) == 0
    for name in ("pruned.json", "pruned.safetensors", "prune_state.pt", "metrics.jsonl", "curves.png"):
        assert (out / name).is_file(), name
    assert "% fewer" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    again = tmp_path / "again"
    capsys.readouterr()
    assert main(["compact", str(out / "prune_state.pt"), "--out", str(again), "--round-to", "2",
                 "--onnx", str(tmp_path / "onnx"), "--onnx-size", "64", "64"]) == 0
    exported = [line for line in capsys.readouterr().out.splitlines() if "ONNX Runtime vs PyTorch" in line]
    assert exported and all(float(line.rsplit(" ", 1)[1]) < 1e-4 for line in exported), exported
    assert sorted(p.suffix for p in (tmp_path / "onnx").iterdir()) == [".onnx"] * len(exported)
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=2)
    report_dir = tmp_path / "report"
    assert main(["eval", tiny_checkpoint, str(out / "pruned.json"), str(again) + ".json", "--video", video,
                 "--gop", "2", "--frames", "2", "--latency-repeats", "1", "--out", str(report_dir),
                 "--no-progress"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    reductions = [report["models"][k]["decoder"]["mac_reduction"] for k in ("model1", "model2")]
    assert all(r > 0.5 for r in reductions), reductions
    assert os.path.getsize(out / "pruned.safetensors") < os.path.getsize(tiny_checkpoint)


@pytest.mark.slow
def test_ablate_seeds_and_resume(capsys, tiny_checkpoint, tmp_path):
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=1)
    out = tmp_path / "ablate"
    common = ["ablate", "--model", tiny_checkpoint, "--steps", "2", "--crop", "64", "--batch-size", "2",
              "--train-max-side", "160", "--train-max-frames", "3", "--video", video, "--gop", "1",
              "--frames", "1", "--out", str(out), "--no-progress", "--threads", "1"]
    assert main(common + ["--variants", "STE", "--seeds", "0", "1"]) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert [(v["variant"], v["seed"]) for v in report["variants"]] == [("STE", 0), ("STE", 1)]
    first = capsys.readouterr().out
    assert "(run 1 of 2" in first and "(run 2 of 2" in first  # the report is written per run
    assert "| STE | budget | 0, 1 |" in first and "+-" in first  # mean +- spread over the seeds
    # the same settings with one more variant: the finished runs are kept, only GD + ALD runs
    assert main(common + ["--variants", "STE", "GD+ALD", "--seeds", "0", "1"]) == 0
    report = json.loads((out / "ablation.json").read_text())
    assert [(v["variant"], v["seed"]) for v in report["variants"]] == [
        ("STE", 0), ("STE", 1), ("GD + ALD", 0), ("GD + ALD", 1)]
    for variant in report["variants"]:
        assert 0.5 < variant["mac_reduction"] < 0.8
        assert variant["mask_flips_total"] > 0
    assert set(report["histories"]) == {f"{v} | budget | seed {s}" for v in ("STE", "GD + ALD") for s in (0, 1)}
    assert (out / "curves.png").is_file() and (out / "ablation_rd.png").is_file()
    printed = capsys.readouterr().out
    assert "resuming" in printed and "2 finished run(s) kept" in printed
    assert "(run 1 of 4" not in printed and "(run 3 of 4" in printed
    assert "| GD + ALD | budget | 0, 1 |" in printed and "mean PSNR offset" in printed
    # other settings on the same folder are refused, not mixed in
    other = list(common)
    other[other.index("--steps") + 1] = "3"
    assert main(other + ["--variants", "STE"]) == 2
    assert "other settings" in capsys.readouterr().err
