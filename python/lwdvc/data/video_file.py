"""Any video file FFmpeg can decode (mp4, mkv, avi, y4m, ...), read with PyAV.

Frames are converted to RGB by FFmpeg (``frame.to_ndarray(format="rgb24")``), i.e. with the
colour matrix and range the stream is tagged with (BT.601 limited range when untagged).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from lwdvc.errors import BadArgumentError, InputFileError

from .sequence import FrameSequence
from .transforms import resize_frames, scaled_size


def _open_container(path: str):
    """Open ``path`` with PyAV; raise FileNotFoundError / ValueError naming the path."""
    import av  # local import: av is heavy and only needed here

    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(path)
    except av.FFmpegError as exc:
        raise InputFileError(f"cannot open video file {path}: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise InputFileError(f"no video stream in {path}")
    return container


def probe_video(path: str | os.PathLike) -> dict:
    """Size, declared frame count and frame rate of the first video stream.

    Returns:
        ``{"height", "width", "frames" (0 if the container does not say), "fps", "codec"}``.
    """
    path = os.fspath(path)
    with _open_container(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        return {
            "height": stream.height,
            "width": stream.width,
            "frames": int(stream.frames or 0),
            "fps": float(rate) if rate else 0.0,
            "codec": stream.codec_context.name,
        }


def iter_video_frames(
    path: str | os.PathLike,
    start: int = 0,
    max_frames: int | None = None,
    scale: float | None = None,
    max_side: int | None = None,
) -> Iterator[torch.Tensor]:
    """Decode frames one at a time (streaming, constant memory).

    Args:
        path: video file.
        start: number of leading frames to skip.
        max_frames: stop after this many frames (None: to the end).
        scale, max_side: optional downscaling (see :func:`~lwdvc.data.transforms.scaled_size`).

    Yields:
        uint8 RGB tensors [3, H, W].
    """
    path = os.fspath(path)
    if start < 0:
        raise BadArgumentError(f"start must be >= 0, got {start}")
    if max_frames is not None and max_frames < 1:
        raise BadArgumentError(f"max_frames must be >= 1, got {max_frames}")
    import av

    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = scaled_size(stream.height, stream.width, scale=scale, max_side=max_side)
        emitted = 0
        for index, frame in enumerate(container.decode(stream)):
            if index < start:
                continue
            rgb = torch.from_numpy(np.ascontiguousarray(frame.to_ndarray(format="rgb24").transpose(2, 0, 1)))
            yield resize_frames(rgb, size)
            emitted += 1
            if max_frames is not None and emitted >= max_frames:
                break
    except av.FFmpegError as exc:
        raise InputFileError(f"error while decoding video file {path}: {exc}") from exc
    finally:
        container.close()


class VideoFileSequence(FrameSequence):
    """A decoded video file held in memory as uint8 (3 bytes per pixel).

    Args:
        path: any file FFmpeg decodes.
        start: frames to skip at the beginning.
        max_frames: keep at most this many frames (bounds memory for long 1080p files).
        scale, max_side: optional downscaling, applied while decoding.
        name: display name (default: the file name without extension).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: FFmpeg cannot read it, it has no video stream, or no frame was decoded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        start: int = 0,
        max_frames: int | None = None,
        scale: float | None = None,
        max_side: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(scale=None, max_side=None)  # frames are stored already scaled
        self.path = os.fspath(path)
        self.name = name or os.path.splitext(os.path.basename(self.path))[0]
        frames = list(iter_video_frames(self.path, start, max_frames, scale, max_side))
        if not frames:
            raise InputFileError(f"no frames decoded from {self.path} (start={start}, max_frames={max_frames})")
        self._frames = torch.stack(frames)
        self.source_size = tuple(self._frames.shape[-2:])
        self._length = len(frames)

    def _read_frame(self, index: int) -> torch.Tensor:
        return self._frames[index]

    def frames_uint8(self) -> torch.Tensor:
        """All frames as stored: uint8 [T, 3, H, W] (no copy)."""
        return self._frames
