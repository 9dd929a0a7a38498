"""Folders of PNG frames (``im1.png, im2.png, ...``, ``im00001.png, ...`` or any sortable names)."""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from lwdvc.errors import InputFileError

from .sequence import FrameSequence

_NUMBER = re.compile(r"(\d+)")


def natural_key(name: str) -> list:
    """Sort key that orders ``im2.png`` before ``im10.png``."""
    return [int(part) if part.isdigit() else part.lower() for part in _NUMBER.split(name)]


def read_png(path: str | os.PathLike) -> torch.Tensor:
    """Read one PNG (gray, RGB or RGBA; 8 or 16 bit) with PyAV.

    Returns:
        uint8 RGB [3, H, W] (alpha dropped, gray replicated, 16-bit rounded to 8).

    Raises:
        FileNotFoundError: missing file. ValueError: not a decodable image (names the path).
    """
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with av.open(path) as container:
            frame = next(container.decode(video=0))
            rgb = frame.to_ndarray(format="rgb24")
    except (av.FFmpegError, StopIteration) as exc:
        raise InputFileError(f"cannot decode image {path}: {exc}") from exc
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def list_png_frames(folder: str | os.PathLike) -> list[str]:
    """PNG files of ``folder`` in natural order (full paths).

    Raises:
        FileNotFoundError: the folder does not exist. ValueError: it holds no ``.png`` file.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"frame folder not found: {folder}")
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(".png")), key=natural_key)
    if not names:
        raise InputFileError(f"no .png frames in folder {folder}")
    return [os.path.join(folder, n) for n in names]


class PNGFolderSequence(FrameSequence):
    """A folder of PNG frames, read on demand.

    Args:
        folder: directory of ``*.png`` files (natural sort order: im1, im2, ..., im10).
        max_frames: use at most this many frames.
        scale, max_side: optional downscaling.
        name: display name (default: the folder name).

    Raises:
        FileNotFoundError / ValueError: missing folder, no PNGs, or frames of different sizes
        (checked lazily: the first frame fixes the size, a frame of another size raises on read).
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        max_frames: int | None = None,
        scale: float | None = None,
        max_side: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(scale=scale, max_side=max_side)
        self.folder = os.fspath(folder)
        self.paths = list_png_frames(self.folder)[:max_frames]
        self.name = name or os.path.basename(os.path.normpath(self.folder))
        first = read_png(self.paths[0])
        self.source_size = tuple(first.shape[-2:])
        self._length = len(self.paths)

    def _read_frame(self, index: int) -> torch.Tensor:
        rgb = read_png(self.paths[index])
        if tuple(rgb.shape[-2:]) != self.source_size:
            raise InputFileError(
                f"frame {self.paths[index]} is {tuple(rgb.shape[-2:])} but the sequence is {self.source_size}"
            )
        return rgb
