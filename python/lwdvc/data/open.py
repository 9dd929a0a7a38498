"""Open any supported frame source from a path: folder of PNGs, raw ``.yuv`` or a video file."""
from __future__ import annotations

import os

from .png_folder import PNGFolderSequence
from .sequence import FrameSequence
from .video_file import VideoFileSequence
from .yuv import YUV420Sequence


def open_sequence(
    path: str | os.PathLike,
    width: int | None = None,
    height: int | None = None,
    max_frames: int | None = None,
    scale: float | None = None,
    max_side: int | None = None,
) -> FrameSequence:
    """Pick the reader from the path.

    * a directory -> :class:`PNGFolderSequence`,
    * ``*.yuv`` -> :class:`YUV420Sequence` (``width``/``height`` or a ``WxH`` in the name),
    * anything else -> :class:`VideoFileSequence` (PyAV / FFmpeg).

    Args:
        path: the source.
        width, height: raw YUV frame size.
        max_frames: at most this many frames.
        scale, max_side: optional downscaling.

    Raises:
        FileNotFoundError: the path does not exist (named in the message).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return PNGFolderSequence(path, max_frames=max_frames, scale=scale, max_side=max_side)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no video, YUV file or frame folder at {path}")
    if path.lower().endswith(".yuv"):
        return YUV420Sequence(path, width, height, max_frames=max_frames, scale=scale, max_side=max_side)
    return VideoFileSequence(path, max_frames=max_frames, scale=scale, max_side=max_side)
