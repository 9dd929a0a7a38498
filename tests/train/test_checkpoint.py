"""Atomic checkpoint files, code-free loading and RNG state capture."""
from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from lwdvc.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, rng_state, save_atomic, set_rng_state


def _payload(value: float) -> dict:
    return {"format": FORMAT, "version": VERSION, "model": {"w": torch.full((3,), value)}, "step": 1}


def test_save_atomic_replaces_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "checkpoint.pt"
    save_atomic(_payload(1.0), path)
    save_atomic(_payload(2.0), path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 2.0))
    assert os.listdir(path.parent) == ["checkpoint.pt"]


def test_save_atomic_removes_temp_files_of_killed_writes(tmp_path):
    stale, fresh = tmp_path / ".tmp-abcd1234.pt", tmp_path / ".tmp-wxyz_789.pt"
    others = [tmp_path / ".tmp-notours.txt", tmp_path / "tmp-abcd1234.pt", tmp_path / ".tmp-abc.pt"]
    for file in (stale, fresh, *others):
        file.write_bytes(b"partial")
    old = os.path.getmtime(stale) - 3600
    for file in (stale, *others):
        os.utime(file, (old, old))
    save_atomic(_payload(1.0), tmp_path / "checkpoint.pt")
    assert not stale.exists()
    assert fresh.exists()  # possibly a write in progress
    assert all(file.exists() for file in others)


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic(_payload(1.0), path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError, match="cannot pickle"):
        save_atomic({**_payload(5.0), "bad": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo executed > /dev/null",))


def test_loading_never_executes_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as file:
        pickle.dump({"format": FORMAT, "x": _Boom()}, file)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("content, match", [({"step": 1}, "not an lwdvc training checkpoint"),
                                            ({"format": FORMAT, "version": 99}, "version 99")])
def test_foreign_checkpoints_are_rejected(tmp_path, content, match):
    path = tmp_path / "other.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_rng_state_round_trip_through_a_file(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    torch.randn(5), np.random.randn(3), random.random()
    save_atomic({**_payload(0.0), "rng": [rng_state()]}, tmp_path / "c.pt")
    expected = (torch.randn(4), np.random.randn(4), [random.random() for _ in range(4)])
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"][0])
    assert torch.equal(torch.randn(4), expected[0])
    assert np.array_equal(np.random.randn(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]
