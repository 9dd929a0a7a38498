"""In-memory test sequences and tiny codecs for the evaluation tests."""
from __future__ import annotations

import torch

from lwdvc.data import FrameSequence, PaddedSequence
from lwdvc.models import VideoCodec


class TensorSequence(FrameSequence):
    """Frames held in a float tensor [T, 3, H, W] (smooth random content)."""

    def __init__(self, frames: torch.Tensor, name: str = "synthetic") -> None:
        super().__init__()
        self._frames = frames
        self.name = name
        self.source_size = tuple(frames.shape[-2:])
        self._length = frames.shape[0]

    def _read_frame(self, index: int) -> torch.Tensor:
        return self._frames[index]


def moving_frames(count: int = 4, height: int = 72, width: int = 88, seed: int = 0) -> torch.Tensor:
    """A smooth random texture shifted by one pixel per frame, [count, 3, height, width] in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, height // 4 + count, width // 4 + count, generator=generator)
    big = torch.nn.functional.interpolate(base, scale_factor=4, mode="bilinear", align_corners=False)[0]
    return torch.stack([big[:, t:t + height, t:t + width] for t in range(count)]).clamp(0, 1)


def tiny_sequence(count: int = 4, **kwargs) -> PaddedSequence:
    return PaddedSequence(TensorSequence(moving_frames(count, **kwargs)))


def tiny_codec(width: float = 0.125, seed: int = 0) -> VideoCodec:
    torch.manual_seed(seed)
    return VideoCodec("dcvc_hem", width=width).eval()
