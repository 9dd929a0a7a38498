"""The training loop: progress, exact resume after SIGKILL, NaN stop, codec checks, data parallel."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from lwdvc.checkpoint import CheckpointError, load_checkpoint
from lwdvc.models import VideoCodec
from lwdvc.train import TrainingDiverged, train
from lwdvc.train.objective import RDObjective

from .conftest import tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (os.environ.get("PYTHONPATH", ""), os.path.join(ROOT, "python"), ROOT) if p)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli_args(config, out) -> list[str]:
    args = ["train", "--out", str(out), "--no-progress"]
    for name in ("family", "width", "intra_width", "frames", "crop", "batch_size", "steps", "lr",
                 "max_side", "max_frames", "checkpoint_every", "log_every", "threads", "seed"):
        args += ["--" + name.replace("_", "-"), str(getattr(config, name))]
    return args


def test_training_lowers_the_loss_and_writes_a_checkpoint(tmp_path):
    config = tiny_config(steps=6, lr=1e-3, frames=1, stage="intra", checkpoint_every=3)
    result = train(config, tmp_path, progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 6 and [h["step"] for h in result["history"]] == [1, 2, 3, 4, 5, 6]
    losses = [h["loss"] for h in result["history"]]
    assert min(losses[3:]) < losses[0]
    assert payload["sampler"]["consumed"] == 12
    # the P-frame codec was frozen in the intra stage
    torch.manual_seed(config.seed)
    fresh = VideoCodec.from_config(config.codec_config())
    state = payload["model"]
    assert all(torch.equal(state[f"inter.{k}"], v) for k, v in fresh.inter.state_dict().items())
    assert any(not torch.equal(state[f"intra.{k}"], v) for k, v in fresh.intra.state_dict().items())


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    config = tiny_config(steps=10)
    killed_dir, full_dir = tmp_path / "killed", tmp_path / "full"
    process = subprocess.Popen([sys.executable, "-m", "lwdvc.cli", *_cli_args(config, killed_dir)],
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at, deadline = None, time.time() + 300
    try:
        while time.time() < deadline and process.poll() is None:
            path = killed_dir / "checkpoint.pt"
            if path.exists():
                step = load_checkpoint(path)["step"]
                if step >= 3:
                    process.send_signal(signal.SIGKILL)
                    killed_at = step
                    break
            time.sleep(0.02)
    finally:
        if process.poll() is None and killed_at is None:
            process.kill()
        process.wait()
    assert killed_at is not None and process.returncode == -signal.SIGKILL
    assert load_checkpoint(killed_dir / "checkpoint.pt")["step"] < config.steps
    resumed = train(config, killed_dir, resume=True, progress=False)
    full = train(config, full_dir, progress=False)
    assert resumed["step"] == full["step"] == config.steps
    a, b = load_checkpoint(killed_dir / "checkpoint.pt"), load_checkpoint(full_dir / "checkpoint.pt")
    for key, value in b["model"].items():
        assert torch.allclose(a["model"][key], value, rtol=0, atol=1e-6), key
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]], abs=1e-5)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = RDObjective.forward

    def poisoned(self, group, rate):
        out = original(self, group, rate)
        calls["n"] += 1
        if calls["n"] == 3:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(RDObjective, "forward", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 3.*step 2\) was kept"):
        train(tiny_config(steps=5), tmp_path, progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 2
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_resume_with_another_codec_is_a_clear_error(tmp_path):
    train(tiny_config(steps=1), tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="written for codec 'dcvc_hem'.*not for 'dcvc_hem' \\(width 0.25"):
        train(tiny_config(steps=2, width=0.25), tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="not for 'fvc'"):
        train(tiny_config(steps=2, family="fvc"), tmp_path, resume=True, progress=False)


def test_resume_with_changed_settings_warns_in_one_line(tmp_path, capsys):
    train(tiny_config(steps=1), tmp_path, progress=False)
    capsys.readouterr()
    changed = tiny_config(steps=2, lr=tiny_config().lr * 2, seed=7)
    result = train(changed, tmp_path, resume=True, progress=False)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(err) == 1, err
    assert f"lr {tiny_config().lr!r} -> {changed.lr!r}" in err[0]
    assert f"seed {tiny_config().seed!r} -> 7" in err[0] and "steps 1 -> 2" in err[0]
    assert "crop" not in err[0] and result["step"] == 2
    train(tiny_config(steps=2), tmp_path / "same", progress=False)
    capsys.readouterr()
    train(tiny_config(steps=2), tmp_path / "same", resume=True, progress=False)
    assert "warning:" not in capsys.readouterr().err


def test_resume_without_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        train(tiny_config(), tmp_path, resume=True, progress=False)


def test_two_process_data_parallel_run(tmp_path):
    config = tiny_config(steps=2, batch_size=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(_free_port()),
               "-m", "lwdvc.cli", *_cli_args(config, tmp_path)]
    result = subprocess.run(command, env={**ENV, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 2 and len(payload["rng"]) == 2
    # the two ranks drew different noise / crops: their saved RNG states differ
    assert not torch.equal(payload["rng"][0]["torch"], payload["rng"][1]["torch"])
    assert result.stdout.count("trained 2 steps") == 1  # only rank 0 reports


def test_non_finite_deformable_offsets_stop_training_as_diverged(tmp_path):
    # FVC with a huge learning rate: its deformable convolutions get NaN offsets within a few steps.
    args = ["train", "--out", str(tmp_path), "--family", "fvc", "--width", "0.125", "--crop", "32",
            "--batch-size", "1", "--frames", "2", "--steps", "8", "--max-side", "128", "--max-frames", "4",
            "--checkpoint-every", "1", "--threads", "1", "--lr", "1e3", "--no-progress"]
    result = subprocess.run([sys.executable, "-m", "lwdvc.cli", *args], env={**ENV, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("lwdvc train: error: training stopped:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = torch.optim.Adam.step

    def poisoned(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", poisoned)
    stop = r"model weights met non-finite values .* at step 2; .*step 1\) was kept"
    with pytest.raises(TrainingDiverged, match=stop):
        train(tiny_config(steps=4), tmp_path, progress=False)
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert payload["step"] == 1
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_a_huge_learning_rate_stops_training_with_one_line(tmp_path, capsys):
    """However the run diverges (a NaN loss, non-finite weights or a distribution's validation of
    NaN arguments, depending on the step the values blow up at), the user sees one line."""
    from lwdvc.cli import main

    argv = _cli_args(tiny_config(steps=4, lr=1e6), tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lwdvc train: error: training stopped: "), err
    assert len(err.strip().splitlines()) == 1
    payload = load_checkpoint(tmp_path / "checkpoint.pt")
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_distribution_validation_of_non_finite_values_stops_training(tmp_path, monkeypatch):
    forward = RDObjective.forward
    calls = []

    def failing_at_step_two(self, group, rate):
        calls.append(1)
        if len(calls) == 2:  # what torch.distributions raises when a scale became NaN
            torch.distributions.Normal(torch.zeros(1), torch.full((1,), float("nan")), validate_args=True)
        return forward(self, group, rate)

    monkeypatch.setattr(RDObjective, "forward", failing_at_step_two)
    with pytest.raises(TrainingDiverged, match="the forward pass met non-finite values"):
        train(tiny_config(steps=4), tmp_path, progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 1


def test_only_non_finite_distribution_arguments_count_as_divergence():
    from lwdvc.train.loop import _non_finite_distribution_argument

    def error_of(scale: float) -> ValueError:
        try:
            torch.distributions.Normal(torch.zeros(3), torch.full((3,), scale), validate_args=True)
        except ValueError as error:
            return error
        raise AssertionError("no validation error")

    assert _non_finite_distribution_argument(error_of(float("nan")))
    assert not _non_finite_distribution_argument(error_of(-1.0))
