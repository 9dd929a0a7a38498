"""Bad input gives one clear line on stderr and exit status 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lwdvc.cli import main
from lwdvc.commands import COMMANDS

from .conftest import write_yuv


def _fails(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"lwdvc {argv[0]}: error:"), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert main([]) == 2


def test_unknown_option_is_a_usage_error(capsys):
    assert main(["eval", "--no-such-option"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_missing_video(capsys, tiny_checkpoint, tmp_path):
    _fails(capsys, ["eval", tiny_checkpoint, "--video", str(tmp_path / "none.mp4"), "--out", str(tmp_path)],
           "no video, YUV file or frame folder at", "none.mp4")


def test_unreadable_video(capsys, tiny_checkpoint, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    _fails(capsys, ["eval", tiny_checkpoint, "--video", str(bad), "--out", str(tmp_path)], "broken.mp4")


def test_yuv_size_mismatch(capsys, tiny_checkpoint, tmp_path):
    path = write_yuv(tmp_path / "clip.yuv", 96, 80, frames=2, extra_bytes=100)
    _fails(capsys, ["eval", tiny_checkpoint, "--video", path, "--yuv-size", "96x80", "--out", str(tmp_path)],
           "clip.yuv")


def test_bad_yuv_size_text(capsys, tiny_checkpoint, tmp_path):
    path = write_yuv(tmp_path / "clip.yuv", 96, 80, frames=2)
    _fails(capsys, ["eval", tiny_checkpoint, "--video", path, "--yuv-size", "96by80"], "--yuv-size must look like")


def test_missing_model(capsys, tmp_path):
    _fails(capsys, ["eval", str(tmp_path / "model.pt")], "no model at")
    _fails(capsys, ["eval", "pretrained:no_such_model"], "no pretrained model 'no_such_model'")


def test_not_a_checkpoint(capsys, tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"junk")
    _fails(capsys, ["eval", str(path)], "cannot read checkpoint")


def test_training_on_too_short_video(capsys, tmp_path):
    path = write_yuv(tmp_path / "short_96x80.yuv", 96, 80, frames=2)
    _fails(capsys, ["train", "--out", str(tmp_path / "run"), "--data", path, "--frames", "3", "--crop", "64",
                    "--steps", "1", "--no-progress"], "no sequence has 3 frames")


def test_training_crop_larger_than_video(capsys, tmp_path):
    path = write_yuv(tmp_path / "small_96x80.yuv", 96, 80, frames=3)
    _fails(capsys, ["train", "--out", str(tmp_path / "run"), "--data", path, "--crop", "128", "--steps", "1",
                    "--no-progress"], "smaller than the crop")


def test_resume_with_another_codec(capsys, tiny_checkpoint, tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_checkpoint, run / "checkpoint.pt")
    _fails(capsys, ["train", "--out", str(run), "--resume", "--family", "fvc", "--crop", "64", "--no-progress"],
           "was written for codec 'dcvc_hem'", "not for 'fvc'")


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--out", "x", "--family", "h264"], "unknown codec family 'h264'"),
    (["train", "--out", "x", "--crop", "100"], "crop must be a multiple of 16"),
    (["prune", "pretrained:none", "--target", "0.65"], "no pretrained model"),
])
def test_bad_settings(capsys, argv, fragment):
    _fails(capsys, argv, fragment)


def test_fresh_process_asks_for_huge_pages_unless_told_otherwise():

    code = ("import os, sys; from lwdvc.cli import main; main(['--help']); "
            "print(os.environ.get('THP_MEM_ALLOC_ENABLE'))")
    for env_value, expected in ((None, "1"), ("0", "0")):
        env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
        if env_value is not None:
            env["THP_MEM_ALLOC_ENABLE"] = env_value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == expected


_TINY_RUN = ["--width", "0.125", "--frames", "2", "--crop", "64", "--batch-size", "2", "--steps", "1",
             "--max-side", "160", "--max-frames", "3", "--threads", "1", "--seed", "0", "--no-progress"]


def test_training_into_a_folder_with_a_checkpoint_is_refused(capsys, tiny_checkpoint, tmp_path):
    import shutil

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_checkpoint, run / "checkpoint.pt")
    before = (run / "checkpoint.pt").read_bytes()
    err = _fails(capsys, ["train", "--out", str(run), *_TINY_RUN], "already holds a checkpoint", "--resume",
                 "--overwrite", "another output folder")
    assert len(err.strip().splitlines()) == 1
    assert (run / "checkpoint.pt").read_bytes() == before
    _fails(capsys, ["train", "--out", str(run), "--resume", "--overwrite", *_TINY_RUN], "exclude each other")
    assert (run / "checkpoint.pt").read_bytes() == before


def test_overwrite_replaces_an_existing_checkpoint(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"an old run")
    assert main(["train", "--out", str(run), "--overwrite", *_TINY_RUN]) == 0
    assert "trained 1 steps" in capsys.readouterr().out
    assert (run / "checkpoint.pt").read_bytes() != b"an old run"
