"""Open-loop P-frame coding: each frame coded against the *original* previous frame.

A P-frame codec's closed-loop quality (``code_sequence``) mixes three things: the I-frame
codec's errors, the drift of decoded references over a GOP, and what the P-frame codec itself
adds. Coding every frame from the original previous frame isolates the last: the gain over
copying the reference says whether the motion and contextual latents carry information, and
the split of the bits says which latent carries it. This is the measurement behind the teacher's
staged training (docs/results/teacher.md).
"""
from __future__ import annotations

import torch

from lwdvc.data import PaddedSequence
from lwdvc.errors import BadArgumentError
from lwdvc.metrics import mean_finite, psnr

__all__ = ["BIT_PARTS", "code_open_loop"]

#: The P-frame latents whose bits are reported: motion (``mv``: latent + hyper latent) and the
#: contextual / residual latent (``y``: latent + hyper latent).
BIT_PARTS = {"mv": ("bpp_mv_y", "bpp_mv_z"), "y": ("bpp_y", "bpp_z")}


@torch.no_grad()
def code_open_loop(codec, sequence: PaddedSequence, rate: int, start: int = 0, frames: int = 5) -> dict:
    """Code frames ``start + 1 .. start + frames - 1`` of ``sequence``, each as a P-frame whose
    reference is the original (not decoded) previous frame, with rounded latents.

    Args:
        codec: a :class:`~lwdvc.models.video_codec.VideoCodec` (run in eval mode).
        sequence: the padded test sequence.
        rate: rate-point index.
        start: index of the first reference frame.
        frames: frames of the window, the first being only a reference (>= 2).

    Returns:
        ``{"name", "rate", "start", "frames", "psnr", "copy_psnr", "gain", "bpp", "bpp_mv",
        "bpp_y"}``: means over the coded frames of the PSNR (RGB, dB), the PSNR of copying the
        reference, their difference, and bits per original pixel in total and per latent; and
        ``"per_frame"`` with the same keys as lists.

    Raises:
        BadArgumentError: a rate point the codec lacks, or a window outside the sequence.
    """
    if not 0 <= rate < codec.num_rates:
        raise BadArgumentError(f"rate point {rate} out of range: the codec has {codec.num_rates}")
    if frames < 2 or start < 0 or start + frames > len(sequence):
        raise BadArgumentError(f"frames {start}..{start + frames - 1} (start {start}, frames {frames}) are not a "
                               f"window of at least 2 frames inside {sequence.name!r} ({len(sequence)} frames)")
    height, width = sequence.original_size
    keys = ("psnr", "copy_psnr", "gain", "bpp", "bpp_mv", "bpp_y")
    per_frame: dict[str, list[float]] = {key: [] for key in keys}
    was_training = codec.training
    codec.eval()
    rate_index = torch.tensor([rate])
    try:
        for index in range(start + 1, start + frames):
            frame = sequence[index].unsqueeze(0)
            state = codec.reference_state(sequence[index - 1].unsqueeze(0))
            args, kwargs = codec.inter_inputs(frame, state, rate_index, quant="round")
            out = codec.inter(*args, **kwargs)
            scale = frame.shape[-2] * frame.shape[-1] / (height * width)  # bpp of the padded frame -> original
            decoded = sequence.crop(out["recon_image"].clamp(0, 1))[0]
            original = sequence.original(index)
            quality, copy = float(psnr(decoded, original)), float(psnr(sequence.original(index - 1), original))
            per_frame["psnr"].append(quality)
            per_frame["copy_psnr"].append(copy)
            per_frame["gain"].append(quality - copy)
            per_frame["bpp"].append(float(out["bpp"][0]) * scale)
            for part, names in BIT_PARTS.items():
                per_frame[f"bpp_{part}"].append(sum(float(out[name][0]) for name in names if name in out) * scale)
    finally:
        codec.train(was_training)
    result = {"name": sequence.name, "rate": rate, "start": start, "frames": frames}
    result.update({key: mean_finite(values) for key, values in per_frame.items()})
    result["per_frame"] = per_frame
    return result
