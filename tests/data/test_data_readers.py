"""Readers: video files (PyAV), raw YUV 4:2:0, PNG folders, the path dispatcher."""
import os

import numpy as np
import pytest
import torch

from lwdvc.data import (
    PNGFolderSequence,
    VideoFileSequence,
    YUV420Sequence,
    iter_video_frames,
    open_sequence,
    probe_video,
    size_from_filename,
    yuv420_frame_bytes,
    yuv420_to_rgb,
)


def as_float(frames_thwc):
    return torch.from_numpy(frames_thwc).permute(0, 3, 1, 2).float() / 255


# ---------------------------------------------------------------- video files
def test_lossless_rgb_video_roundtrip_is_exact(tmp_path, make_video, rgb_frames):
    path = make_video(tmp_path / "clip.mkv", rgb_frames, codec="ffv1", pix_fmt="bgr0")
    seq = VideoFileSequence(path)
    assert len(seq) == 6 and seq.size == (48, 64) and seq.name == "clip"
    frame = seq[2]
    assert frame.dtype == torch.float32 and frame.shape == (3, 48, 64)
    torch.testing.assert_close(seq.frames(), as_float(rgb_frames), atol=0, rtol=0)
    torch.testing.assert_close(seq[-1], seq[5], atol=0, rtol=0)
    with pytest.raises(IndexError, match="frame index 6 out of range for 'clip'"):
        seq[6]


def test_mp4_h264_close_to_source(tmp_path, make_video, rgb_frames):
    path = make_video(tmp_path / "clip.mp4", rgb_frames, options={"crf": "0"})
    seq = VideoFileSequence(path)
    assert len(seq) == len(rgb_frames)
    err = (seq.frames() - as_float(rgb_frames)).abs().mean().item()
    assert err < 0.02, err  # only the 4:2:0 subsampling and colour rounding differ
    info = probe_video(path)
    assert (info["height"], info["width"], info["codec"]) == (48, 64, "h264")


def test_start_max_frames_and_downscale(tmp_path, make_video, rgb_frames):
    path = make_video(tmp_path / "clip.mkv", rgb_frames, codec="ffv1", pix_fmt="bgr0")
    seq = VideoFileSequence(path, start=2, max_frames=3)
    assert len(seq) == 3
    torch.testing.assert_close(seq[0], as_float(rgb_frames[2:3])[0], atol=0, rtol=0)
    small = VideoFileSequence(path, max_side=32)
    assert small.size == (24, 32) and small[0].shape == (3, 24, 32)
    # the downscaled frame is a blurred copy: its mean colour is preserved
    torch.testing.assert_close(small[0].mean((1, 2)), as_float(rgb_frames)[0].mean((1, 2)), atol=0.01, rtol=0)
    streamed = list(iter_video_frames(path, start=1, max_frames=2, scale=0.5))
    assert len(streamed) == 2 and streamed[0].shape == (3, 24, 32) and streamed[0].dtype == torch.uint8


def test_missing_and_unreadable_video_name_the_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoFileSequence(missing)
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(b"not a video" * 50)
    with pytest.raises(ValueError, match="garbage.mp4"):
        VideoFileSequence(bad)


# ---------------------------------------------------------------- raw YUV
def write_yuv(path, frames_y, frames_uv):
    with open(path, "wb") as handle:
        for y, uv in zip(frames_y, frames_uv):
            handle.write(y.tobytes())
            handle.write(uv.tobytes())
    return path


def test_yuv_reader_planes_and_rgb(tmp_path):
    rng = np.random.default_rng(3)
    h, w, t = 16, 24, 3
    ys = rng.integers(0, 256, (t, 1, h, w), dtype=np.uint8)
    uvs = rng.integers(0, 256, (t, 2, h // 2, w // 2), dtype=np.uint8)
    path = write_yuv(tmp_path / "Seq_24x16_30.yuv", ys, uvs)
    seq = YUV420Sequence(path)  # size parsed from the name
    assert len(seq) == 3 and seq.size == (16, 24)
    y, uv = seq.planes(1)
    assert torch.equal(y, torch.from_numpy(ys[1])) and torch.equal(uv, torch.from_numpy(uvs[1]))
    expected = yuv420_to_rgb(torch.from_numpy(ys[2]).float() / 255, torch.from_numpy(uvs[2]).float() / 255)
    torch.testing.assert_close(seq[2], expected, atol=0, rtol=0)
    assert len(YUV420Sequence(path, 24, 16, max_frames=2)) == 2
    assert seq.frames().shape == (3, 3, 16, 24)


def test_yuv_wrong_size_reports_expected_and_actual_bytes(tmp_path):
    path = tmp_path / "clip.yuv"
    path.write_bytes(bytes(24 * 16 * 3 // 2 * 2 + 7))
    with pytest.raises(ValueError) as info:
        YUV420Sequence(path, 24, 16)
    msg = str(info.value)
    assert str(os.path.getsize(path)) in msg and str(yuv420_frame_bytes(24, 16)) in msg and "7 bytes" in msg
    with pytest.raises(ValueError, match="width and height"):
        YUV420Sequence(path)
    with pytest.raises(FileNotFoundError, match="missing.yuv"):
        YUV420Sequence(tmp_path / "missing.yuv", 24, 16)


def test_size_from_filename_and_frame_bytes():
    assert size_from_filename("/d/BasketballDrive_1920x1080_50.yuv") == (1920, 1080)
    assert size_from_filename("plain.yuv") is None
    assert yuv420_frame_bytes(1920, 1080) == 1920 * 1080 * 3 // 2


# ---------------------------------------------------------------- PNG folders
def test_png_folder_natural_order(tmp_path, make_png, make_frames):
    frames = make_frames(11, 20, 28, seed=5)
    for i, rgb in enumerate(frames, start=1):
        make_png(tmp_path / f"im{i}.png", rgb)
    seq = PNGFolderSequence(tmp_path)
    assert len(seq) == 11 and seq.size == (20, 28)
    # im10 must come after im9, not after im1
    torch.testing.assert_close(seq[9], as_float(frames[9:10])[0], atol=0, rtol=0)
    torch.testing.assert_close(seq.frames(), as_float(frames), atol=0, rtol=0)


def test_png_folder_errors(tmp_path, make_png, make_frames):
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        PNGFolderSequence(tmp_path / "no_such_dir")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no .png frames"):
        PNGFolderSequence(empty)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    make_png(mixed / "im1.png", make_frames(1, 8, 8)[0])
    make_png(mixed / "im2.png", make_frames(1, 10, 8)[0])
    seq = PNGFolderSequence(mixed)
    with pytest.raises(ValueError, match="im2.png"):
        seq[1]


def test_open_sequence_dispatch(tmp_path, make_video, make_png, rgb_frames):
    video = make_video(tmp_path / "a.mkv", rgb_frames, codec="ffv1", pix_fmt="bgr0")
    assert isinstance(open_sequence(video), VideoFileSequence)
    folder = tmp_path / "pngs"
    folder.mkdir()
    make_png(folder / "im1.png", rgb_frames[0])
    assert isinstance(open_sequence(folder), PNGFolderSequence)
    yuv = tmp_path / "b_8x4.yuv"
    yuv.write_bytes(bytes(yuv420_frame_bytes(8, 4) * 2))
    opened = open_sequence(yuv)
    assert isinstance(opened, YUV420Sequence) and len(opened) == 2
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        open_sequence(tmp_path / "nothing_here.mp4")
