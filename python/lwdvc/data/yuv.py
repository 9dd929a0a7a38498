"""Raw 8-bit planar YUV 4:2:0 sequences (UVG, HEVC classes B-E, MCL-JCV ``.yuv`` files).

Each frame is ``W*H`` luma bytes followed by ``(W/2)*(H/2)`` Cb and Cr bytes. The file is
memory-mapped, so frames are read on demand. Conversion to RGB follows the official DCVC test
scripts (BT.709, full range, bilinear chroma upsampling): see :mod:`lwdvc.data.color`.
"""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from lwdvc.errors import BadArgumentError, InputFileError

from .color import yuv420_to_rgb
from .sequence import FrameSequence

_SIZE_IN_NAME = re.compile(r"(?<![0-9])(\d{1,5})x(\d{1,5})(?![0-9])")


def size_from_filename(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from a name such as ``Beauty_1920x1080_120fps_420_8bit_YUV.yuv``, or None."""
    match = _SIZE_IN_NAME.search(os.path.basename(os.fspath(path)))
    return (int(match.group(1)), int(match.group(2))) if match else None


def yuv420_frame_bytes(width: int, height: int) -> int:
    """Bytes of one 8-bit 4:2:0 frame: W*H + 2 * ceil(W/2) * ceil(H/2)."""
    return width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)


class YUV420Sequence(FrameSequence):
    """An 8-bit planar YUV 4:2:0 file as RGB frames.

    Args:
        path: the ``.yuv`` file.
        width, height: frame size in pixels (None: parsed from a ``WxH`` in the file name).
        matrix: ``"bt709"`` (default, as the DCVC scripts) or ``"bt601"``.
        full_range: True (default) treats samples as full range 0..255.
        max_frames: use at most this many frames.
        scale, max_side: optional downscaling.
        name: display name (default: the file name without extension).

    Raises:
        FileNotFoundError: missing file.
        ValueError: bad size, or a file size that is not a whole number of frames (the message
            gives the frame size in bytes, the file size and the remainder).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int | None = None,
        height: int | None = None,
        matrix: str = "bt709",
        full_range: bool = True,
        max_frames: int | None = None,
        scale: float | None = None,
        max_side: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(scale=scale, max_side=max_side)
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"YUV file not found: {self.path}")
        if width is None or height is None:
            parsed = size_from_filename(self.path)
            if parsed is None:
                raise BadArgumentError(f"width and height are needed for {self.path} (no WxH in its name)")
            width, height = parsed
        if width < 2 or height < 2:
            raise BadArgumentError(f"YUV frame size must be at least 2x2, got {width}x{height} for {self.path}")
        self.matrix, self.full_range = matrix, full_range
        self.name = name or os.path.splitext(os.path.basename(self.path))[0]
        self.source_size = (height, width)
        self.frame_bytes = yuv420_frame_bytes(width, height)
        file_bytes = os.path.getsize(self.path)
        count, rest = divmod(file_bytes, self.frame_bytes)
        if rest or count == 0:
            raise InputFileError(
                f"{self.path}: file size {file_bytes} bytes is not a whole number of {width}x{height} "
                f"YUV420 8-bit frames (expected a multiple of {self.frame_bytes} bytes per frame; "
                f"{count} frames leave {rest} bytes over). Check width, height and format."
            )
        self._length = count if max_frames is None else min(count, max_frames)
        self._data = np.memmap(self.path, dtype=np.uint8, mode="r")

    def planes(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw planes of frame ``index`` at source size.

        Returns:
            (y uint8 [1, H, W], uv uint8 [2, ceil(H/2), ceil(W/2)]).
        """
        index = self._check_index(index)
        h, w = self.source_size
        ch, cw = (h + 1) // 2, (w + 1) // 2
        base = index * self.frame_bytes
        y = np.array(self._data[base : base + h * w]).reshape(1, h, w)
        uv = np.array(self._data[base + h * w : base + self.frame_bytes]).reshape(2, ch, cw)
        return torch.from_numpy(y), torch.from_numpy(uv)

    def _read_frame(self, index: int) -> torch.Tensor:
        y, uv = self.planes(index)
        return yuv420_to_rgb(y.float() / 255.0, uv.float() / 255.0, self.matrix, self.full_range)
