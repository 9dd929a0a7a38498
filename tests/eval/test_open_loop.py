"""Open-loop P-frame coding: each frame against the original previous frame."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import BadArgumentError
from lwdvc.eval.open_loop import code_open_loop
from lwdvc.metrics import psnr

from .helpers import tiny_codec, tiny_sequence


def test_each_frame_is_coded_from_the_original_previous_frame():
    codec, sequence = tiny_codec(), tiny_sequence(5)
    result = code_open_loop(codec, sequence, rate=2, start=1, frames=3)
    assert result["start"] == 1 and result["frames"] == 3 and len(result["per_frame"]["psnr"]) == 2
    # frame 3 from the original frame 2, directly
    with torch.no_grad():
        direct = codec.code_inter(sequence[3].unsqueeze(0), codec.reference_state(sequence[2].unsqueeze(0)),
                                  torch.tensor([2]), quant="round")
    decoded = sequence.crop(direct["recon"].clamp(0, 1))[0]
    assert result["per_frame"]["psnr"][1] == pytest.approx(float(psnr(decoded, sequence.original(3))), abs=1e-9)
    assert result["per_frame"]["bpp"][1] == pytest.approx(float(direct["bpp"][0]) * 128 * 128 / (72 * 88), rel=1e-6)
    copy = float(psnr(sequence.original(2), sequence.original(3)))
    assert result["per_frame"]["copy_psnr"][1] == pytest.approx(copy, abs=1e-9)
    assert result["per_frame"]["gain"][1] == pytest.approx(result["per_frame"]["psnr"][1] - copy, abs=1e-9)
    # the parts add up to the total, and both latents cost bits
    for total, mv, y in zip(result["per_frame"]["bpp"], result["per_frame"]["bpp_mv"], result["per_frame"]["bpp_y"]):
        assert mv + y == pytest.approx(total, rel=1e-5) and mv > 0 and y > 0
    assert result["psnr"] == pytest.approx(sum(result["per_frame"]["psnr"]) / 2)
    assert not codec.training


def test_bad_windows_and_rates_are_named():
    codec, sequence = tiny_codec(), tiny_sequence(4)
    with pytest.raises(BadArgumentError, match="not a window of at least 2 frames inside 'synthetic' \\(4 frames\\)"):
        code_open_loop(codec, sequence, 0, start=3, frames=2)
    with pytest.raises(BadArgumentError, match="not a window"):
        code_open_loop(codec, sequence, 0, frames=1)
    with pytest.raises(BadArgumentError, match="rate point 4 out of range"):
        code_open_loop(codec, sequence, 4)
