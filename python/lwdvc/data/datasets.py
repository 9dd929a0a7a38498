"""Torch datasets over :class:`~lwdvc.data.sequence.FrameSequence` objects.

* :class:`CropGroupDataset` - training: random crops + flips of frame pairs or GOPs.
* :class:`PaddedSequence` - testing: full frames padded to a multiple of 64, and the crop back.

Both are map-style datasets, so ``DataLoader(..., sampler=DistributedSampler(ds))`` works.
Random draws use torch's global generator, which DataLoader seeds per worker.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from lwdvc.errors import BadArgumentError, InputFileError

from .sequence import FrameSequence
from .transforms import PAD_MULTIPLE, crop_to_size, pad_to_multiple, random_crop_flip, to_float


class CropGroupDataset(Dataset):
    """Groups of consecutive frames with one random crop and random flips per group.

    Item ``i`` is the group that starts at the ``i``-th valid start position over all sequences
    (positions wrap when ``length`` is larger), so an epoch visits every start once.

    Args:
        sequences: frame sources (e.g. :func:`~lwdvc.data.clips.default_sequences`).
        frames_per_item: 2 for (reference, current) pairs, or a GOP length.
        crop: crop size (int or (h, w)); every sequence must be at least that large.
        hflip, vflip: random horizontal / vertical flips.
        length: items per epoch (default: the number of start positions).

    Returns (per item):
        float32 [frames_per_item, 3, crop_h, crop_w] in [0, 1].

    Raises:
        ValueError: no sequences, or no sequence has enough frames / a large enough size.
    """

    def __init__(
        self,
        sequences: Sequence[FrameSequence],
        frames_per_item: int = 2,
        crop: int | tuple[int, int] = 256,
        hflip: bool = True,
        vflip: bool = True,
        length: int | None = None,
    ) -> None:
        if frames_per_item < 1:
            raise BadArgumentError(f"frames_per_item must be >= 1, got {frames_per_item}")
        if not sequences:
            raise BadArgumentError("CropGroupDataset needs at least one sequence, got none")
        ch, cw = (crop, crop) if isinstance(crop, int) else tuple(crop)
        for seq in sequences:
            h, w = seq.size
            if h < ch or w < cw:
                raise BadArgumentError(f"sequence {seq.name!r} is {h}x{w}, smaller than the crop {ch}x{cw}")
        self.sequences = list(sequences)
        self.frames_per_item = frames_per_item
        self.crop = (ch, cw)
        self.hflip, self.vflip = hflip, vflip
        self._starts = [
            (s, t) for s, seq in enumerate(self.sequences) for t in range(len(seq) - frames_per_item + 1)
        ]
        if not self._starts:
            longest = max(len(seq) for seq in self.sequences)
            raise BadArgumentError(f"no sequence has {frames_per_item} frames (the longest has {longest})")
        if length is not None and length < 1:
            raise BadArgumentError(f"length must be >= 1, got {length}")
        self.length = len(self._starts) if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length} items")
        seq_index, start = self._starts[index % len(self._starts)]
        seq = self.sequences[seq_index]
        group = torch.stack([seq.frame_raw(start + k) for k in range(self.frames_per_item)])
        return to_float(random_crop_flip(group, self.crop, self.hflip, self.vflip))


class PaddedSequence(Dataset):
    """Full test frames padded (right/bottom) to a multiple of 64, as the official test scripts do.

    Args:
        sequence: the frame source.
        multiple: padding multiple (64).
        mode: ``"replicate"`` (default, DCVC-DC/FM scripts) or ``"constant"`` (zeros).
        max_frames: use at most this many frames.

    Returns (per item):
        float32 [3, H', W'] padded frame; :attr:`original_size` is (H, W) and :meth:`crop`
        restores a reconstruction to it (metrics are computed at the original size).
    """

    def __init__(
        self, sequence: FrameSequence, multiple: int = PAD_MULTIPLE, mode: str = "replicate",
        max_frames: int | None = None,
    ) -> None:
        if len(sequence) == 0:
            raise InputFileError(f"test sequence {sequence.name!r} has no frames")
        self.sequence = sequence
        self.multiple, self.mode = multiple, mode
        self.length = len(sequence) if max_frames is None else min(len(sequence), max_frames)
        self.original_size = sequence.size

    @property
    def name(self) -> str:
        return self.sequence.name

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(f"frame {index} out of range for {self.name!r} with {self.length} frames")
        padded, _ = pad_to_multiple(self.sequence[index], self.multiple, self.mode)
        return padded

    def original(self, index: int) -> torch.Tensor:
        """Unpadded frame ``index`` [3, H, W] (the target of the metrics)."""
        return self.sequence[index]

    def crop(self, frames: torch.Tensor) -> torch.Tensor:
        """Crop padded frames [..., 3, H', W'] back to [..., 3, H, W]."""
        return crop_to_size(frames, self.original_size)
