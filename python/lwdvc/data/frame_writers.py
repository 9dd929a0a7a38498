"""Write decoded frames: a ``.y4m`` file (8-bit YUV 4:2:0) or a folder of lossless RGB PNGs.

Both take float RGB frames [3, H, W] in [0, 1] one at a time. The ``.y4m`` file is written
under a temporary name and renamed when :meth:`Y4MWriter.close` is called, so an interrupted
decode leaves no partial file; PNG frames (``frame_0001.png``, ...) are each written whole.
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F

from lwdvc.atomic_file import AtomicFile
from lwdvc.data.color import rgb_to_yuv420

__all__ = ["PNGFolderWriter", "Y4MWriter", "frame_writer", "to_uint8"]


def to_uint8(frame: torch.Tensor) -> np.ndarray:
    """[C, H, W] float in [0, 1] -> uint8 [C, H, W] (rounded)."""
    if frame.dim() != 3 or not frame.is_floating_point():
        raise ValueError(f"frames must be float [C, H, W], got {frame.dtype} {tuple(frame.shape)}")
    return (frame.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


def _yuv420_planes(frame: torch.Tensor) -> bytes:
    """Full-range BT.709 Y, Cb, Cr planes of an RGB frame (odd sizes: chroma of the ceiling)."""
    height, width = frame.shape[-2:]
    even = frame
    if height % 2 or width % 2:
        even = F.pad(frame[None], (0, width % 2, 0, height % 2), mode="replicate")[0]
    y, uv = rgb_to_yuv420(even.float().clamp(0, 1))
    return to_uint8(y[:, :height, :width]).tobytes() + to_uint8(uv).tobytes()


class Y4MWriter:
    """Writes frames to a ``.y4m`` file (C420jpeg: full-range 4:2:0)."""

    def __init__(self, path: str | os.PathLike, height: int, width: int, fps: int = 25) -> None:
        self.path = os.fspath(path)
        self.size = (int(height), int(width))
        self._file = AtomicFile(self.path, suffix=".y4m")
        self._file.write(f"YUV4MPEG2 W{width} H{height} F{int(fps)}:1 Ip A1:1 C420jpeg XCOLORRANGE=FULL\n".encode())
        self.frames = 0

    def write(self, frame: torch.Tensor) -> None:
        if tuple(frame.shape) != (3, *self.size):
            raise ValueError(f"frame must be [3, {self.size[0]}, {self.size[1]}], got {tuple(frame.shape)}")
        self._file.write(b"FRAME\n" + _yuv420_planes(frame))
        self.frames += 1

    def close(self) -> str:
        return self._file.commit()

    def abort(self) -> None:
        self._file.abort()


class PNGFolderWriter:
    """Writes ``frame_0001.png``, ``frame_0002.png``, ... (8-bit RGB, lossless) into a folder."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = os.fspath(folder)
        os.makedirs(self.path, exist_ok=True)
        self.frames = 0

    def write(self, frame: torch.Tensor) -> None:
        import av

        rgb = np.ascontiguousarray(to_uint8(frame).transpose(1, 2, 0))
        if rgb.shape[-1] != 3:
            raise ValueError(f"frame must be RGB [3, H, W], got {tuple(frame.shape)}")
        context = av.CodecContext.create("png", "w")
        context.width, context.height, context.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
        packets = context.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")) + context.encode(None)
        self.frames += 1
        target = AtomicFile(os.path.join(self.path, f"frame_{self.frames:04d}.png"), suffix=".png")
        try:
            for packet in packets:
                target.write(bytes(packet))
            target.commit()
        except BaseException:
            target.abort()
            raise

    def close(self) -> str:
        return self.path

    def abort(self) -> None:
        """Frames written so far stay (each is complete)."""


def frame_writer(path: str | os.PathLike, height: int, width: int, fps: int = 25):
    """A :class:`Y4MWriter` for a path ending in ``.y4m``, else a :class:`PNGFolderWriter`."""
    path = os.fspath(path)
    if path.lower().endswith(".y4m"):
        return Y4MWriter(path, height, width, fps)
    if os.path.isfile(path):
        raise ValueError(f"{path} is a file: give a .y4m file or a folder for PNG frames")
    return PNGFolderWriter(path)
