"""keep_every: copies of the checkpoint kept under their step, identical to the checkpoint then."""
from __future__ import annotations

import pytest
import torch

from lwdvc.checkpoint import load_checkpoint
from lwdvc.errors import ConfigError

from .conftest import tiny_config


def test_snapshots_are_kept_at_their_steps(tmp_path):
    from lwdvc.train import train
    from lwdvc.train.loop import snapshot_path

    config = tiny_config(steps=4, checkpoint_every=1, keep_every=2)
    result = train(config, tmp_path, progress=False)
    kept = sorted(p.name for p in tmp_path.glob("checkpoint_step*.pt"))
    assert kept == ["checkpoint_step000002.pt", "checkpoint_step000004.pt"]
    assert not list(tmp_path.glob(".tmp-*"))
    last = load_checkpoint(snapshot_path(result["checkpoint"], 4))
    final = load_checkpoint(result["checkpoint"])
    assert last["step"] == final["step"] == 4
    assert all(torch.equal(last["model"][k], final["model"][k]) for k in final["model"])
    earlier = load_checkpoint(snapshot_path(result["checkpoint"], 2))
    assert earlier["step"] == 2
    assert any(not torch.equal(earlier["model"][k], final["model"][k]) for k in final["model"])


def test_keep_every_must_be_a_multiple_of_checkpoint_every():
    with pytest.raises(ConfigError, match="keep_every must be 0 or a multiple of checkpoint_every"):
        tiny_config(checkpoint_every=3, keep_every=4)
    with pytest.raises(ConfigError, match="keep_every"):
        tiny_config(keep_every=-1)
