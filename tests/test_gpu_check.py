"""``python -m benchmarks.gpu_check``: the run without a GPU (registration only), bad input, and the
report of a GPU run (rendered from synthetic part results)."""
from __future__ import annotations

import json
import time
import types

import pytest
import torch

from benchmarks import gpu_check, gpu_decoders, gpu_report
from benchmarks.gpu_registration import expected_cuda_ops
from lwdvc_kernels import ops
from lwdvc_kernels.ops.registry import OPS

CUDA_OPS = ["channel_norm", "conv2d_epilogue", "gdn", "masked_weight", "masked_weight_backward", "masked_weights",
            "masked_weights_backward", "to_channels_last"]


def test_expected_cuda_ops_come_from_the_cuda_sources():
    assert expected_cuda_ops() == CUDA_OPS
    devices = {spec.name: spec.devices for spec in OPS}
    assert all("cuda" in devices[name] for name in CUDA_OPS)


def test_run_without_gpu_checks_registration_and_measures_nothing(tmp_path, capsys):
    # on a GPU machine only the registration part runs here (the other parts take minutes)
    args = ["--out", str(tmp_path)] + (["--parts", "registration"] if torch.cuda.is_available() else [])
    assert gpu_check.main(args) == 0
    printed = capsys.readouterr().out
    assert "GPU speed: not measured" in printed
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["gpu_speed"] == "not measured" and report["exit_status"] == 0
    registration = report["parts"]["registration"]
    assert registration["status"] in ("passed", "not applicable")
    assert registration["detail"]["expected"] == CUDA_OPS
    assert {row["op"] for row in registration["detail"]["ops"]} == {spec.name for spec in OPS}
    if ops.with_cuda_kernels():
        assert registration["status"] == "passed" and registration["detail"]["compiled"] == CUDA_OPS
    if not torch.cuda.is_available():
        assert all(report["parts"][p]["status"] == "not run" for p in ("cuda-tests", "triton", "benchmarks"))
    assert "GPU speed: not measured" in (tmp_path / "gpu_check.md").read_text()
    assert not list(tmp_path.glob(".*.tmp"))  # written through temporary files, renamed


@pytest.mark.parametrize("argv,message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--parts", "registration,speed"], "unknown part speed"),
    (["--triton-limit", "0"], "positive number of seconds"),
    (["--rounds", "0"], "whole number >= 1"),
])
def test_bad_options_give_one_line(argv, message, capsys):
    assert gpu_check.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_out_that_is_a_file_gives_one_line(tmp_path, capsys):
    path = tmp_path / "report.txt"
    path.write_text("x")
    assert gpu_check.main(["--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and err.count("\n") == 1
    assert gpu_check.main(["--out", str(path / "sub")]) == 2
    assert "cannot create the directory" in capsys.readouterr().err


def test_cuda_tests_are_selected_by_the_marker():
    from tests.ops.helpers import needs_cuda

    @needs_cuda
    @pytest.mark.parametrize("x", [1])
    def test_on_gpu(x):
        pass

    assert {m.name for m in test_on_gpu.pytestmark} == {"cuda", "skipif", "parametrize"}
    assert gpu_check.pytest_counts("....\n58 passed, 2 skipped, 1204 deselected in 31.20s\n") == {
        "passed": 58, "skipped": 2, "deselected": 1204}


def test_decoder_benchmark_times_in_turns_and_stops_at_the_deadline(monkeypatch):
    """bench_codec's control flow with stand-in decoders (no GPU): medians, ratios, target, deadline."""
    monkeypatch.setattr(gpu_decoders, "decoder", lambda *a: [types.SimpleNamespace(name="m")])
    monkeypatch.setattr(gpu_decoders, "macs", lambda c, h, w, kind: 100 if kind == "dense" else 35)

    def runner(codec, height, width, provider, device):
        if provider == "compacted-compile-fp16":
            raise RuntimeError("compiler failed")
        return lambda: [torch.ones(1)]

    monkeypatch.setattr(gpu_decoders, "runner", runner)
    record = gpu_decoders.bench_codec("fvc", 5, time.monotonic() + 60, reserve_s=1)
    assert not record["stopped"] and record["rounds"] == 5 and record["mac_ratio"] == pytest.approx(100 / 35)
    assert record["variants"]["dense-eager-fp16"]["speedup_vs_dense_fp16"] == 1.0
    assert record["variants"]["compacted-opt-fp16"]["efficiency"] > 0 and record["target"]["met"] is not None
    assert record["variants"]["compacted-compile-fp16"]["error"].startswith("not run")
    gpu_decoders.bench_peer(record, 5, time.monotonic() + 60, reserve_s=1)
    assert record["variants"]["compacted-compile-fp16"]["error"] == "RuntimeError: compiler failed"
    assert record["peer_run"]["rounds"] == 5 and not record["stopped"]
    late = gpu_decoders.bench_codec("fvc", 5, time.monotonic(), reserve_s=1)
    assert late["stopped"] and late["target"]["met"] is None


def test_report_of_a_gpu_run_renders(tmp_path):
    variants = {p: {"median_ms": 10.0, "mac_ratio": 1.0, "speedup_vs_dense_fp16": 1.0, "efficiency": 1.0,
                    "finite": True} for p in gpu_decoders.PROVIDERS}
    variants["compacted-opt-fp16"].update(median_ms=4.0, mac_ratio=2.857, speedup_vs_dense_fp16=2.5,
                                          efficiency=0.875)
    codec = {"codec": "dcvc", "dense_gmacs": 1533.7, "compacted_gmacs": 536.8, "mac_ratio": 2.857, "rounds": 20,
             "stopped": False, "variants": variants, "target": gpu_decoders.target(variants)}
    setup = {"baseline": "dense-eager-fp16", "cudnn": 91000,
             "target": {"provider": "compacted-opt-fp16", "speedup": 2.0, "efficiency": 0.8}}
    triton = {"op": "gdn", "dtype": "fp16", "passed": True,
              "checks": [{"name": "GDN C=64", "max_abs_error": 1e-4, "worst_vs_tolerance": 0.1}]}
    report = {
        "command": "python -m benchmarks.gpu_check", "started": "now", "seconds": 300.0, "exit_status": 0,
        "gpu_speed": "measured", "gpu_speed_note": "",
        "machine": {"host": "h", "cpus": 16, "platform": "Linux", "python": "3.12", "torch": "2.11",
                    "torch_cuda": "13.0", "cudnn": 91000, "triton": "3.6.0",
                    "gpu": {"name": "NVIDIA H100", "capability": "9.0", "memory_gib": 79.1, "count": 1}},
        "parts": {
            "registration": {"status": "passed", "note": "ok", "seconds": 3.0, "time_limit_s": 20.0, "detail": None},
            "cuda-tests": {"status": "passed", "note": "pytest passed", "seconds": 40.0, "time_limit_s": 120.0,
                           "counts": {"passed": 58}},
            "triton": {"status": "passed", "note": "1 case", "seconds": 9.0, "time_limit_s": 80.0, "cases": [triton]},
            "benchmarks": {"status": "measured", "note": "1 codec", "seconds": 150.0, "time_limit_s": 200.0,
                           "setup": setup, "codecs": [codec]},
        },
    }
    json_path, md_path = gpu_report.write_report(tmp_path, report)
    text = md_path.read_text()
    assert "NVIDIA H100" in text and "58 passed" in text and "| gdn | fp16 | pass |" in text
    assert "### dcvc: target met" in text and "speed-up 2.50x" in text
    assert json.loads(json_path.read_text())["gpu_speed"] == "measured"
