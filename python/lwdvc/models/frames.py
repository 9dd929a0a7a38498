"""Input checks and the pad/crop of frames to the 64-pixel grid the codecs need."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["check_frame", "padding_for", "pad_frame", "crop_frame", "check_latent", "example_tensors",
           "check_frame_size", "check_padded_frame", "PAD_MULTIPLE"]

PAD_MULTIPLE = 64


def check_frame(frame: torch.Tensor, name: str = "frame", channels: int = 3) -> None:
    """Raise a clear error unless ``frame`` is a non-empty float tensor [N, channels, H, W]."""
    if not isinstance(frame, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(frame).__name__}")
    if not frame.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {frame.dtype}")
    if frame.dim() != 4:
        raise ValueError(f"{name} must be 4-D [N, {channels}, H, W], got shape {tuple(frame.shape)}")
    if frame.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(frame.shape)}")
    if frame.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(frame.shape)}")


def check_latent(tensor: torch.Tensor, name: str, channels: int,
                 size: tuple[int, int] | None = None) -> None:
    """Raise unless ``tensor`` is float [N, channels, H, W] (with spatial ``size`` if given)."""
    check_frame(tensor, name, channels)
    if size is not None and tuple(tensor.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must have spatial size {tuple(size)}, got {tuple(tensor.shape)}")


def padding_for(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding that makes the frame a multiple of ``multiple``.

    As in the official DCVC-HEM test script, all padding goes to the right and the bottom.
    """
    new_h = (height + multiple - 1) // multiple * multiple
    new_w = (width + multiple - 1) // multiple * multiple
    return 0, new_w - width, 0, new_h - height


def pad_frame(frame: torch.Tensor, multiple: int = PAD_MULTIPLE) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad a frame [N, C, H, W] on the right/bottom to a multiple of ``multiple``.

    Returns:
        (padded frame, padding) with padding as in ``padding_for``.
    """
    padding = padding_for(frame.shape[-2], frame.shape[-1], multiple)
    if any(padding):
        frame = F.pad(frame, padding, mode="constant", value=0.0)
    return frame, padding


def crop_frame(frame: torch.Tensor, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo ``pad_frame``: remove ``padding`` (left, right, top, bottom) from [N, C, H, W]."""
    left, right, top, bottom = padding
    return frame[..., top:frame.shape[-2] - bottom, left:frame.shape[-1] - right]


def example_tensors(model: nn.Module, shapes: dict[str, list[tuple[int, ...]]]
                     ) -> dict[str, tuple[torch.Tensor, ...]]:
    """Seeded random tensors [1, *shape] on the model's device and dtype (empty on meta)."""
    reference = next(model.parameters())
    generator = torch.Generator().manual_seed(0)
    examples = {}
    for name, entries in shapes.items():
        tensors = []
        for shape in entries:
            if reference.device.type == "meta":
                tensors.append(torch.empty((1, *shape), device="meta", dtype=reference.dtype))
            else:
                value = torch.rand((1, *shape), generator=generator) * 2 - 1
                tensors.append(value.to(device=reference.device, dtype=reference.dtype))
        examples[name] = tuple(tensors)
    return examples


def check_frame_size(height: int, width: int) -> None:
    """Raise unless ``height`` and ``width`` are positive multiples of ``PAD_MULTIPLE``."""
    if height <= 0 or width <= 0 or height % PAD_MULTIPLE or width % PAD_MULTIPLE:
        raise ValueError(f"frame size must be positive multiples of {PAD_MULTIPLE}, "
                         f"got {height}x{width}")


def check_padded_frame(frame: torch.Tensor, name: str) -> tuple[int, int]:
    """Check a frame [N, 3, H, W] already padded to multiples of 64; returns (H, W)."""
    check_frame(frame, name)
    height, width = frame.shape[-2:]
    if height % PAD_MULTIPLE or width % PAD_MULTIPLE:
        raise ValueError(f"{name} must be padded to multiples of {PAD_MULTIPLE}, got "
                         f"{height}x{width}; use lwdvc.models.frames.pad_frame")
    return height, width
