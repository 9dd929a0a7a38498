"""The common interface of every frame source: a random-access sequence of RGB frames."""
from __future__ import annotations

import torch

from .transforms import resize_frames, scaled_size, to_float


class FrameSequence:
    """A video as a random-access list of RGB frames.

    Subclasses implement :meth:`_read_frame` (one frame at source size) and set
    ``self.name``, ``self.source_size`` (H, W) and ``self._length``. Frames come out as float32
    RGB tensors [3, H, W] in [0, 1], downscaled when ``scale`` / ``max_side`` ask for it.

    Args:
        scale: optional downscaling factor in (0, 1].
        max_side: optional bound on the longest side after downscaling.
    """

    name: str
    source_size: tuple[int, int]
    _length: int

    def __init__(self, scale: float | None = None, max_side: int | None = None) -> None:
        self.scale = scale
        self.max_side = max_side

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames this sequence returns."""
        return scaled_size(*self.source_size, scale=self.scale, max_side=self.max_side)

    def __len__(self) -> int:
        return self._length

    def _read_frame(self, index: int) -> torch.Tensor:
        """One frame at source size, uint8 [3, H, W] (or float [3, H, W] in [0, 1])."""
        raise NotImplementedError

    def _check_index(self, index: int) -> int:
        if not isinstance(index, int):
            raise TypeError(f"frame index must be an int, got {type(index).__name__}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"frame index {index} out of range for {self.name!r} with {n} frames")
        return index

    def frame_raw(self, index: int) -> torch.Tensor:
        """Frame ``index`` at output size as stored (uint8 [3, H, W] for 8-bit sources)."""
        return resize_frames(self._read_frame(self._check_index(index)), self.size)

    def __getitem__(self, index: int) -> torch.Tensor:
        """Frame ``index`` as float32 RGB [3, H, W] in [0, 1]."""
        return to_float(self.frame_raw(index))

    def frames(self, start: int = 0, count: int | None = None) -> torch.Tensor:
        """Consecutive frames ``start .. start+count-1`` as float32 [T, 3, H, W]."""
        stop = len(self) if count is None else start + count
        if start < 0 or stop > len(self) or stop <= start:
            raise IndexError(f"frames [{start}, {stop}) out of range for {self.name!r} with {len(self)} frames")
        return torch.stack([self[i] for i in range(start, stop)])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        h, w = self.size
        return f"{type(self).__name__}(name={self.name!r}, frames={len(self)}, size={h}x{w})"
