"""The "residual" stage: the P-frame codec alone, every frame coded against the original previous frame."""
from __future__ import annotations

import torch

from lwdvc.models import VideoCodec
from lwdvc.train import train
from lwdvc.train.objective import RDObjective

from .conftest import tiny_config


def _group_and_objective(frames: int = 3):
    torch.manual_seed(0)
    codec = VideoCodec("dcvc_hem", width=0.125)
    objective = RDObjective(codec, [85.0, 170.0, 380.0, 840.0], "residual")
    return objective, torch.rand(2, frames, 3, 64, 64), torch.tensor([1, 3])


def test_residual_loss_is_the_mean_rd_cost_of_pairs_of_original_frames():
    objective, group, rate = _group_and_objective()
    codec = objective.codec
    torch.manual_seed(7)
    got = objective(group, rate)
    torch.manual_seed(7)  # the same quantisation noise, drawn in the same order
    losses, bpps = [], []
    for t in (1, 2):
        out = codec.code_inter(group[:, t], codec.reference_state(group[:, t - 1]), rate)
        mse = (out["recon"] - group[:, t]).square().mean(dim=(1, 2, 3))
        losses.append(objective.lambdas[rate] * mse + out["bpp"])
        bpps.append(out["bpp"])
    assert torch.allclose(got["loss"], torch.stack(losses).mean(), rtol=1e-5)
    assert torch.allclose(got["bpp"], torch.stack(bpps).mean(), rtol=1e-5)


def test_residual_loss_ignores_the_intra_codec_and_follows_the_references():
    objective, group, rate = _group_and_objective()
    torch.manual_seed(7)
    before = objective(group, rate)["loss"]
    with torch.no_grad():
        for parameter in objective.codec.intra.parameters():
            parameter.mul_(-3.0)
    torch.manual_seed(7)
    assert torch.equal(objective(group, rate)["loss"], before)
    moved = group.clone()
    moved[:, 0] = torch.rand_like(moved[:, 0])  # the first P-frame's reference
    torch.manual_seed(7)
    assert not torch.allclose(objective(moved, rate)["loss"], before)


def test_residual_stage_trains_only_the_p_frame_codec(tmp_path):
    config = tiny_config(stage="residual", steps=2, lr=1e-3, frames=2)
    torch.manual_seed(config.seed)  # the run builds its initial weights after this seed
    before = VideoCodec.from_config(config.codec_config())
    after = train(config, tmp_path, progress=False)["codec"]
    changed = {name for (name, p), (_, q) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(p, q)}
    assert any(name.startswith("inter.contextual_decoder.") for name in changed)
    assert all(name.startswith("inter.") for name in changed), sorted(n for n in changed if not n.startswith("inter."))
