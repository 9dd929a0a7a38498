"""Motion pre-training: synthetic flow pairs, the "flow" and "motion" stages, per-part init."""
from __future__ import annotations

import pytest
import torch

from lwdvc.checkpoint import load_checkpoint
from lwdvc.models import VideoCodec
from lwdvc.models.layers import flow_warp
from lwdvc.train import train
from lwdvc.train.loop import load_init_weights
from lwdvc.train.objective import RDObjective
from lwdvc.train.synthetic_motion import endpoint_error, random_flow, synthetic_pair

from .conftest import tiny_config


def test_random_flow_is_smooth_bounded_and_seeded():
    a = random_flow(3, 32, 48, max_shift=4.0, local=1.0, generator=torch.Generator().manual_seed(1))
    b = random_flow(3, 32, 48, max_shift=4.0, local=1.0, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 2, 32, 48) and torch.equal(a, b)
    assert a.abs().max() < 4.0 + 4.0 + 6.0  # shift + affine at the corners + a few sigma of the local field
    assert (a[..., 1:] - a[..., :-1]).abs().max() < 1.0  # smooth: neighbours move alike
    assert a.std() > 0.3  # not a zero field


def test_synthetic_pair_is_the_reference_warped_by_its_flow():
    torch.manual_seed(0)
    reference = torch.rand(2, 3, 32, 32)
    current, flow = synthetic_pair(reference, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(current, flow_warp(reference, flow))
    assert endpoint_error(flow, flow).max() < 1e-3
    assert endpoint_error(torch.zeros_like(flow), flow).min() > 0.1


def test_flow_stage_trains_only_the_motion_estimator(tmp_path):
    config = tiny_config(stage="flow", steps=3, lr=1e-3, crop=32, batch_size=2)
    assert config.frames == 1
    torch.manual_seed(config.seed)  # the run builds its initial weights after this seed
    before = VideoCodec.from_config(config.codec_config())
    result = train(config, tmp_path, progress=False)
    after = result["codec"]
    changed = {name for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(p, q)}
    assert changed and all(name.startswith("inter.optic_flow.") for name in changed)
    history = load_checkpoint(tmp_path / "checkpoint.pt")["history"]
    assert all(row["bpp"] == 0.0 and row["loss"] > 0 for row in history)


def test_motion_stage_trains_motion_coding_only(tmp_path):
    config = tiny_config(stage="motion", steps=2, lr=1e-3, frames=2)
    torch.manual_seed(config.seed)
    before = VideoCodec.from_config(config.codec_config())
    after = train(config, tmp_path, progress=False)["codec"]
    changed = {name for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(p, q)}
    motion = ("inter.optic_flow.", "inter.mv_", "inter.bit_estimator_z_mv.")
    assert any(n.startswith("inter.mv_decoder.") for n in changed)
    assert all(n.startswith(motion) for n in changed), sorted(n for n in changed if not n.startswith(motion))


def test_motion_forward_matches_the_full_forward_motion_path():
    torch.manual_seed(0)
    codec = VideoCodec("dcvc_hem", width=0.125).eval()
    frame, ref = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        motion = codec.inter.forward_motion(frame, {"ref_frame": ref}, quant="round")
        full = codec.inter(frame, {"ref_frame": ref}, quant="round")
    assert torch.allclose(motion["bpp_mv_y"], full["bpp_mv_y"]) and torch.allclose(motion["bpp_mv_z"], full["bpp_mv_z"])
    assert motion["warped"].shape == frame.shape


def test_motion_stages_refuse_codecs_without_separate_motion_coding():
    codec = VideoCodec("fvc", width=0.125)
    with pytest.raises(ValueError, match="stage 'motion' needs a P-frame codec"):
        RDObjective(codec, [380.0], "motion")


def test_init_per_part_from_two_checkpoints(tmp_path):
    first = tiny_config(stage="intra", steps=1, seed=1)
    second = tiny_config(stage="flow", steps=1, seed=2, crop=32)
    a = train(first, tmp_path / "a", progress=False)["codec"]
    b = train(second, tmp_path / "b", progress=False)["codec"]
    torch.manual_seed(9)
    codec = VideoCodec.from_config(first.codec_config())
    load_init_weights(codec, f"intra={tmp_path / 'a' / 'checkpoint.pt'},inter={tmp_path / 'b' / 'checkpoint.pt'}")
    for part, source in (("intra", a), ("inter", b)):
        for (name, p), (_, q) in zip(getattr(codec, part).state_dict().items(),
                                     getattr(source, part).state_dict().items()):
            assert torch.equal(p, q), f"{part}.{name}"
    with pytest.raises(ValueError, match="PART 'intra' or 'inter'"):
        load_init_weights(codec, f"decoder={tmp_path / 'a' / 'checkpoint.pt'}")
