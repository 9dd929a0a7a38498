"""A tiny trained checkpoint and tiny test videos for the command-line tests."""
from __future__ import annotations

import numpy as np
import pytest

from lwdvc.train import TrainConfig, train


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """One training step of a width-0.125 DCVC-HEM (enough for the commands to run end to end)."""
    out = tmp_path_factory.mktemp("tiny_model")
    config = TrainConfig(family="dcvc_hem", width=0.125, frames=2, crop=64, batch_size=2, steps=1,
                         max_side=160, max_frames=3, threads=1, seed=0)
    train(config, out, progress=False)
    return str(out / "checkpoint.pt")


def write_yuv(path, width: int, height: int, frames: int, extra_bytes: int = 0, seed: int = 0) -> str:
    """A raw YUV 4:2:0 file of smooth random frames (plus ``extra_bytes`` of junk)."""
    rng = np.random.default_rng(seed)
    size = width * height * 3 // 2
    data = (rng.random(size * frames) * 200 + 20).astype(np.uint8).tobytes() + b"\0" * extra_bytes
    path.write_bytes(data)
    return str(path)
