"""``lwdvc encode`` / ``lwdvc decode``: a file round trip through the command line, and bad files."""
from __future__ import annotations

import os

import pytest
import torch

from lwdvc.cli import main
from lwdvc.data.png_folder import list_png_frames, read_png
from lwdvc.data.video_file import VideoFileSequence

from .conftest import write_yuv


@pytest.fixture(scope="module")
def encoded(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("coded")
    video = write_yuv(folder / "clip_50x34.yuv", 50, 34, frames=4)
    path = str(folder / "clip.lwdv")
    assert main(["encode", video, "-o", path, "--model", tiny_checkpoint, "--rate", "2", "--gop", "3",
                 "--no-progress"]) == 0
    return path


def test_decode_writes_png_frames_and_y4m(encoded, tmp_path, capsys):
    assert main(["decode", encoded, "-o", str(tmp_path / "png"), "--threads", "1", "--no-progress"]) == 0
    names = [os.path.basename(p) for p in list_png_frames(tmp_path / "png")]
    assert names == ["frame_0001.png", "frame_0002.png", "frame_0003.png", "frame_0004.png"]
    first = read_png(tmp_path / "png" / "frame_0001.png")
    assert first.shape == (3, 34, 50) and first.dtype == torch.uint8 and int(first.max()) > 0
    assert main(["decode", encoded, "-o", str(tmp_path / "out.y4m"), "--threads", "2", "--no-progress"]) == 0
    data = (tmp_path / "out.y4m").read_bytes()
    assert data.startswith(b"YUV4MPEG2 W50 H34 ")
    assert data.count(b"FRAME\n") == 4
    assert len(data) == data.index(b"\n") + 1 + 4 * (6 + 50 * 34 + 2 * 25 * 17)
    assert len(VideoFileSequence(str(tmp_path / "out.y4m"))) == 4
    assert "wrote" in capsys.readouterr().out


def test_decoded_pngs_equal_with_one_and_two_threads(encoded, tmp_path):
    for threads in ("1", "2"):
        assert main(["decode", encoded, "-o", str(tmp_path / threads), "--threads", threads, "--no-progress"]) == 0
    for a, b in zip(list_png_frames(tmp_path / "1"), list_png_frames(tmp_path / "2")):
        assert torch.equal(read_png(a), read_png(b))


def _fails(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def test_damaged_files_give_one_line(encoded, tmp_path, capsys):
    data = open(encoded, "rb").read()
    (tmp_path / "cut.lwdv").write_bytes(data[: len(data) - 5])
    _fails(capsys, ["decode", str(tmp_path / "cut.lwdv"), "-o", str(tmp_path / "a.y4m")], "truncated")
    flipped = bytearray(data)
    flipped[-2] ^= 1
    (tmp_path / "bad.lwdv").write_bytes(bytes(flipped))
    _fails(capsys, ["decode", str(tmp_path / "bad.lwdv"), "-o", str(tmp_path / "a.y4m")], "checksum")
    _fails(capsys, ["decode", encoded, "-o", str(tmp_path / "a.y4m"), "--model", "pretrained:dcvc_hem_w025_v4"],
           "another model")
    _fails(capsys, ["decode", str(tmp_path / "none.lwdv"), "-o", str(tmp_path / "a.y4m")], "none.lwdv")
    assert not (tmp_path / "a.y4m").exists()


def test_bad_encode_settings_give_one_line(tiny_checkpoint, tmp_path, capsys):
    video = write_yuv(tmp_path / "clip_32x32.yuv", 32, 32, frames=2)
    _fails(capsys, ["encode", video, "-o", str(tmp_path / "x.lwdv"), "--model", tiny_checkpoint, "--rate", "9"],
           "--rate 9")
    assert not (tmp_path / "x.lwdv").exists()


def test_optimised_encode_decodes_with_the_networks_its_file_names(tiny_checkpoint, encoded, tmp_path, capsys):
    video = write_yuv(tmp_path / "clip_50x34.yuv", 50, 34, frames=3)
    path = str(tmp_path / "fast.lwdv")
    assert main(["encode", video, "-o", path, "--model", tiny_checkpoint, "--rate", "1", "--gop", "3",
                 "--optimize", "bf16", "--no-progress"]) == 0
    assert main(["decode", path, "-o", str(tmp_path / "auto"), "--no-progress"]) == 0
    assert main(["decode", path, "-o", str(tmp_path / "named"), "--optimize", "bf16", "--no-progress"]) == 0
    frames = list_png_frames(tmp_path / "auto")
    assert len(frames) == 3
    assert all(torch.equal(read_png(a), read_png(b)) for a, b in zip(frames, list_png_frames(tmp_path / "named")))
    _fails(capsys, ["decode", path, "-o", str(tmp_path / "a.y4m"), "--optimize", "fp32"],
           "optimised in bf16 (--optimize bf16)", "not optimised in fp32")
    _fails(capsys, ["decode", encoded, "-o", str(tmp_path / "a.y4m"), "--optimize", "bf16"],
           "as trained (no --optimize)")
    assert not (tmp_path / "a.y4m").exists()


def test_optimize_choices_are_the_optimisation_dtypes():
    from lwdvc.commands.common import OPTIMIZE_CHOICES
    from lwdvc.eval import DTYPES

    assert OPTIMIZE_CHOICES == tuple(DTYPES)
