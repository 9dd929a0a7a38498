"""Frame transforms: downscaling, padding to a multiple of 64 (and back), random crop + flip.

All functions take frames as float tensors [..., C, H, W] (or uint8 where stated) and never
change the values they keep.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lwdvc.errors import BadArgumentError

#: The official DCVC test scripts pad every frame to a multiple of 64 before coding.
PAD_MULTIPLE = 64


def scaled_size(height: int, width: int, scale: float | None = None, max_side: int | None = None) -> tuple[int, int]:
    """Target size after optional downscaling, rounded to even numbers (4:2:0 friendly).

    Args:
        height, width: source size.
        scale: factor in (0, 1]; None keeps the size.
        max_side: longest side after scaling; smaller frames are left alone.

    Returns:
        (new_height, new_width); the unchanged size when neither option shrinks the frame.
    """
    if scale is not None and not 0.0 < scale <= 1.0:
        raise BadArgumentError(f"scale must be in (0, 1], got {scale}")
    if max_side is not None and max_side < 2:
        raise BadArgumentError(f"max_side must be >= 2, got {max_side}")
    factor = 1.0 if scale is None else float(scale)
    if max_side is not None and max(height, width) * factor > max_side:
        factor = max_side / max(height, width)
    if factor == 1.0:
        return height, width
    new_h = max(2, int(round(height * factor / 2.0)) * 2)
    new_w = max(2, int(round(width * factor / 2.0)) * 2)
    return new_h, new_w


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Downscale frames with an anti-aliased bilinear filter.

    Args:
        frames: [..., C, H, W] float or uint8.
        size: (height, width).

    Returns:
        [..., C, size[0], size[1]] of the input dtype (uint8 is rounded back).
    """
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    lead = frames.shape[:-3]
    x = frames.reshape(-1, *frames.shape[-3:])
    out = F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    if frames.dtype == torch.uint8:
        out = out.round_().clamp_(0, 255).to(torch.uint8)
    return out.reshape(*lead, *out.shape[-3:])


def padding_for(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """Right/bottom padding (left, right, top, bottom) that makes a frame a multiple of ``multiple``.

    The official scripts pad on the right and the bottom only, so cropping back is a slice.
    """
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    new_h = math.ceil(height / multiple) * multiple
    new_w = math.ceil(width / multiple) * multiple
    return 0, new_w - width, 0, new_h - height


def pad_to_multiple(
    frames: torch.Tensor, multiple: int = PAD_MULTIPLE, mode: str = "replicate"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad frames on the right and bottom to a multiple of ``multiple``.

    Args:
        frames: [C, H, W] or [N, C, H, W] float.
        multiple: 64 for the DCVC family.
        mode: ``"replicate"`` (DCVC-DC / DCVC-FM test scripts) or ``"constant"`` (zeros).

    Returns:
        (padded [.., C, H', W'], (H, W) original size for :func:`crop_to_size`).
    """
    if frames.dim() not in (3, 4):
        raise ValueError(f"frames must be [C, H, W] or [N, C, H, W], got shape {tuple(frames.shape)}")
    if mode not in ("replicate", "constant"):
        raise ValueError(f"padding mode must be 'replicate' or 'constant', got {mode!r}")
    h, w = frames.shape[-2:]
    pad = padding_for(h, w, multiple)
    if pad == (0, 0, 0, 0):
        return frames, (h, w)
    batched = frames.unsqueeze(0) if frames.dim() == 3 else frames
    out = F.pad(batched, pad, mode=mode)
    return (out[0] if frames.dim() == 3 else out), (h, w)


def crop_to_size(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left ``size`` = (H, W) region.

    Args:
        frames: [..., C, H', W'] with H' >= H and W' >= W.
        size: (H, W).
    """
    h, w = size
    if frames.shape[-2] < h or frames.shape[-1] < w:
        raise ValueError(f"cannot crop shape {tuple(frames.shape)} to a larger size {(h, w)}")
    return frames[..., :h, :w]


def random_crop_flip(
    frames: torch.Tensor,
    crop: tuple[int, int] | int,
    hflip: bool = True,
    vflip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The same random crop and random flips applied to every frame of a group.

    Args:
        frames: [T, C, H, W] (a pair or GOP of one sequence), any dtype.
        crop: (height, width) or a square side.
        hflip, vflip: allow horizontal / vertical flips, each with probability 1/2.
        generator: optional torch.Generator for reproducible draws.

    Returns:
        [T, C, crop_h, crop_w].
    """
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    if frames.dim() != 4:
        raise ValueError(f"frames must be [T, C, H, W], got shape {tuple(frames.shape)}")
    h, w = frames.shape[-2:]
    if ch > h or cw > w:
        raise BadArgumentError(f"crop {(ch, cw)} is larger than the frames {(h, w)}; use a smaller crop or "
                               "less downscaling")
    top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
    out = frames[..., top : top + ch, left : left + cw]
    flips = torch.rand(2, generator=generator)
    if hflip and flips[0] < 0.5:
        out = out.flip(-1)
    if vflip and flips[1] < 0.5:
        out = out.flip(-2)
    return out.contiguous()


def center_crop(frames: torch.Tensor, crop: tuple[int, int] | int) -> torch.Tensor:
    """Centred crop of [..., C, H, W] frames to ``crop`` = (height, width) or a square side."""
    ch, cw = (crop, crop) if isinstance(crop, int) else crop
    h, w = frames.shape[-2:]
    if ch > h or cw > w:
        raise BadArgumentError(f"crop {(ch, cw)} is larger than the frames {(h, w)}")
    top, left = (h - ch) // 2, (w - cw) // 2
    return frames[..., top : top + ch, left : left + cw]


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [.., 3, H, W] in 0..255 -> float32 in [0, 1]; float input is returned as float32."""
    if frames.dtype == torch.uint8:
        return frames.float().div_(255.0)
    return frames.float()
