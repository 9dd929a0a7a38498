"""Tiny synthetic video fixtures written into tmp_path (never downloaded)."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest


def write_video(path, frames: np.ndarray, codec: str = "libx264", pix_fmt: str = "yuv420p", options=None) -> str:
    """frames: uint8 [T, H, W, 3] RGB."""
    with av.open(os.fspath(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return os.fspath(path)


def write_png(path, rgb: np.ndarray) -> str:
    """rgb: uint8 [H, W, 3]."""
    with av.open(os.fspath(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.height, stream.width = rgb.shape[:2]
        stream.pix_fmt = "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return os.fspath(path)


def smooth_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Moving smooth colour patterns plus mild noise: uint8 [T, H, W, 3] (codec friendly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    out = []
    for t in range(count):
        chans = [
            0.5 + 0.4 * np.sin(2 * np.pi * (xx + 3 * t) / width + c) * np.cos(2 * np.pi * yy / height + c)
            for c in range(3)
        ]
        img = np.stack(chans, axis=-1) * 255 + rng.normal(0, 4, (height, width, 3))
        out.append(np.clip(np.round(img), 0, 255).astype(np.uint8))
    return np.stack(out)


@pytest.fixture
def rgb_frames():
    return smooth_frames(6, 48, 64)


@pytest.fixture
def make_video():
    """Factory: make_video(path, frames_uint8_THWC, codec=..., pix_fmt=..., options=...) -> path."""
    return write_video


@pytest.fixture
def make_png():
    """Factory: make_png(path, rgb_uint8_HWC) -> path."""
    return write_png


@pytest.fixture
def make_frames():
    """Factory: make_frames(count, height, width, seed=0) -> uint8 [T, H, W, 3]."""
    return smooth_frames
