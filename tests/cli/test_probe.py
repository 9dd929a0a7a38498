"""``lwdvc probe``: the open-loop P-frame table and its JSON."""
from __future__ import annotations

import json

from lwdvc.cli import main

from .conftest import write_yuv


def test_probe_prints_a_row_per_rate_and_writes_json(capsys, tiny_checkpoint, tmp_path):
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=4)
    out = tmp_path / "probe.json"
    assert main(["probe", tiny_checkpoint, "--video", video, "--rates", "0", "3", "--start", "1", "--frames", "3",
                 "--json", str(out), "--threads", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"| {tiny_checkpoint}")]
    assert len(rows) == 2 and "| clip_96x80 | 3 | 2-3 |" in rows[1]
    results = json.loads(out.read_text())
    assert [r["rate"] for r in results] == [0, 3] and all(len(r["per_frame"]["psnr"]) == 2 for r in results)
    assert f"{results[1]['gain']:+.2f}" in rows[1]


def test_probe_window_outside_the_video_is_one_line(capsys, tiny_checkpoint, tmp_path):
    video = write_yuv(tmp_path / "clip_96x80.yuv", 96, 80, frames=2)
    assert main(["probe", tiny_checkpoint, "--video", video, "--frames", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a window of at least 2 frames inside 'clip_96x80' (2 frames)" in err and "\n" not in err
