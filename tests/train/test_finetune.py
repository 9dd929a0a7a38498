"""Pruning fine-tune: MAC budget reached, compacted codec equivalent to the masked student."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import ConfigError
from lwdvc.models import VideoCodec
from lwdvc.train.finetune import PruneConfig, prune_codec


@pytest.mark.slow
def test_compacted_codec_codes_like_the_masked_student():
    torch.manual_seed(0)
    teacher = VideoCodec("dcvc_hem", width=0.125).eval()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = prune_codec(teacher, PruneConfig(steps=4, crop=64, batch_size=2, max_side=160, max_frames=3,
                                              threads=1, ramp=0.25), progress=False)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # teacher untouched
    assert abs(result["compaction"]["mac_reduction"] - 0.65) <= 0.02
    assert [row["step"] for row in result["history"]] == [1, 2, 3, 4]
    # ramp 0.25 of 4 steps: the full target is in force from the second step on
    assert result["history"][0]["target_now"] < 0.65
    assert [row["target_now"] for row in result["history"][1:]] == pytest.approx([0.65] * 3)
    student, small = result["student"].eval(), result["compacted"]
    frames = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    rate = torch.tensor([0, 3])
    with torch.no_grad():
        ref = student.code_intra(frames[:1].repeat(2, 1, 1, 1), rate, quant="round")["recon"].clamp(0, 1)
        state = student.reference_state(ref)
        masked = student.code_inter(frames, state, rate, quant="round")
        compacted = small.code_inter(frames, state, rate, quant="round")
    error = (masked["recon"] - compacted["recon"]).norm() / masked["recon"].norm()
    assert float(error) < 1e-4
    assert torch.allclose(masked["bpp"], compacted["bpp"], rtol=1e-3)
    assert sum(p.numel() for p in small.inter.parameters()) < sum(p.numel() for p in teacher.inter.parameters())


def test_prune_config_checks():
    with pytest.raises(ValueError, match="mode must be one of"):
        PruneConfig(mode="magic")
    with pytest.raises(ValueError, match="target must be in"):
        PruneConfig(target=1.5)
    with pytest.raises(ValueError, match="frames must be >= 3"):
        PruneConfig(frames=2)
    with pytest.raises(ValueError, match="ramp must be a fraction"):
        PruneConfig(ramp=1.5)


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": float("inf")}, "finite numbers, got lr=inf"),
    ({"lambda3": float("nan")}, "finite numbers, got lambda3=nan"),
    ({"lambdas": [float("inf")]}, "finite numbers, got lambdas=\\[inf\\]"),
    ({"lr": 0.0}, "lr must be > 0"),
])
def test_prune_config_rejects_non_finite_and_non_positive_settings(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PruneConfig(**kwargs)


@pytest.mark.slow
def test_threshold_selection_trains_the_thresholds_and_reports_the_masks_reduction():
    torch.manual_seed(0)
    teacher = VideoCodec("dcvc_hem", width=0.125).eval()
    config = PruneConfig(steps=3, crop=64, batch_size=2, max_side=160, max_frames=3, threads=1, ramp=0.0,
                         ald=False, selection="threshold", threshold_lr=0.5)
    result = prune_codec(teacher, config, progress=False)
    pruner = result["pruner"]
    assert pruner.selection == "threshold"
    assert all(float(t.detach()) > -3.0 for t in pruner.parameters())  # the optimiser moved them up
    assert [row["prune_loss"] > 0 for row in result["history"]] == [True] * 3
    assert "proxy_mac_reduction" in result["history"][-1]
    assert result["compaction"]["mac_reduction"] == pytest.approx(pruner.mac_reduction(), abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("ald", [False, True])
def test_pruning_is_deterministic_for_a_seed_and_thread_count(ald):
    torch.manual_seed(0)
    teacher = VideoCodec("dcvc_hem", width=0.125).eval()

    def run(seed):
        config = PruneConfig(steps=3, crop=64, batch_size=2, max_side=160, max_frames=3, threads=1, ramp=0.5,
                             seed=seed, ald=ald)
        return prune_codec(teacher, config, progress=False)

    first, again, other = run(5), run(5), run(6)
    keys = ("loss", "mse", "mac_reduction", "mask_flips_total")
    assert [[row[k] for k in keys] for row in first["history"]] == [[row[k] for k in keys] for row in again["history"]]
    weights = first["compacted"].inter.state_dict()
    assert all(torch.equal(v, again["compacted"].inter.state_dict()[k]) for k, v in weights.items())
    # and the seed matters: another seed draws other crops and noise
    assert [row["loss"] for row in first["history"]] != [row["loss"] for row in other["history"]]


def test_non_finite_deformable_offsets_stop_the_pruning_fine_tune_as_diverged(monkeypatch):
    from lwdvc.train import TrainingDiverged
    from lwdvc_kernels.ops.deform_conv2d_torchvision import NonFiniteOffsetError

    def diverged(self, *args, **kwargs):
        raise NonFiniteOffsetError("deform_conv2d: offset holds NaN or inf values")

    teacher = VideoCodec("dcvc_hem", width=0.125).eval()
    monkeypatch.setattr(VideoCodec, "code_inter", diverged)
    config = PruneConfig(steps=2, crop=64, batch_size=1, max_side=160, max_frames=3, threads=1, ald=False)
    with pytest.raises(TrainingDiverged, match="forward pass met non-finite values at step 1.*offset holds NaN"):
        prune_codec(teacher, config, progress=False)
