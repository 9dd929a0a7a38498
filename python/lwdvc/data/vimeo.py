"""Vimeo-90k septuplets: ``<root>/sequences/00001/0001/im1.png ... im7.png``.

The split lists ``<root>/sep_trainlist.txt`` and ``<root>/sep_testlist.txt`` hold one
``00001/0001`` entry per line. Every listed folder is checked when the dataset is built.
"""
from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset

from lwdvc.errors import BadArgumentError, InputFileError

from .png_folder import read_png
from .transforms import center_crop, random_crop_flip, to_float

SEPTUPLET_LENGTH = 7
SPLIT_LISTS = {"train": "sep_trainlist.txt", "test": "sep_testlist.txt"}


def read_septuplet_list(root: str | os.PathLike, split: str = "train", list_file: str | None = None) -> list[str]:
    """Entries of a Vimeo-90k split list, each checked to be a folder with im1.png..im7.png.

    Args:
        root: dataset root (holds ``sequences/`` and the list files).
        split: ``"train"`` or ``"test"`` (ignored when ``list_file`` is given).
        list_file: explicit list file path.

    Returns:
        Relative entries such as ``"00001/0001"``.

    Raises:
        FileNotFoundError: root or list missing, or listed folders missing (the message gives
            how many and the first few, with the full path expected).
        ValueError: unknown split or an empty list.
    """
    root = os.fspath(root)
    if list_file is None:
        if split not in SPLIT_LISTS:
            raise BadArgumentError(f"split must be one of {sorted(SPLIT_LISTS)}, got {split!r}")
        list_file = os.path.join(root, SPLIT_LISTS[split])
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"Vimeo-90k list file not found: {list_file}")
    with open(list_file, encoding="utf-8") as handle:
        entries = [line.strip() for line in handle if line.strip()]
    if not entries:
        raise InputFileError(f"Vimeo-90k list file {list_file} names no septuplets")
    seq_root = os.path.join(root, "sequences")
    missing = []
    for entry in entries:
        folder = os.path.join(seq_root, entry)
        if not all(os.path.isfile(os.path.join(folder, f"im{i}.png")) for i in range(1, SEPTUPLET_LENGTH + 1)):
            missing.append(folder)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise FileNotFoundError(
            f"{len(missing)} of {len(entries)} septuplets listed in {list_file} are missing or lack "
            f"im1.png..im7.png: {shown}"
        )
    return entries


class Vimeo90kSeptuplets(Dataset):
    """Random-crop, random-flip training groups from Vimeo-90k septuplets.

    Each item is ``frames_per_item`` consecutive frames of one septuplet. For training the start
    frame, the crop and the flips are random; for evaluation (``random=False``) the group starts
    at im1 and the crop is centred, without flips.

    Args:
        root: dataset root.
        split: ``"train"`` or ``"test"``.
        frames_per_item: 2 (a reference/current pair) up to 7 (the whole septuplet).
        crop: crop size (int or (h, w)); None keeps the full 448x256 frames.
        random: random start, crop and flips (default True).
        list_file: explicit list file instead of the split's.

    Returns (per item):
        float32 [frames_per_item, 3, crop_h, crop_w] in [0, 1].
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        frames_per_item: int = 2,
        crop: int | tuple[int, int] | None = 256,
        random: bool = True,
        list_file: str | None = None,
    ) -> None:
        if not 1 <= frames_per_item <= SEPTUPLET_LENGTH:
            raise BadArgumentError(f"frames_per_item must be in 1..{SEPTUPLET_LENGTH}, got {frames_per_item}")
        self.root = os.fspath(root)
        self.entries = read_septuplet_list(self.root, split, list_file)
        self.frames_per_item = frames_per_item
        self.crop = crop
        self.random = random

    def __len__(self) -> int:
        return len(self.entries)

    def folder(self, index: int) -> str:
        """Folder of septuplet ``index``."""
        return os.path.join(self.root, "sequences", self.entries[index])

    def __getitem__(self, index: int) -> torch.Tensor:
        span = SEPTUPLET_LENGTH - self.frames_per_item + 1
        start = int(torch.randint(0, span, (1,))) if self.random else 0
        folder = self.folder(index)
        frames = torch.stack(
            [read_png(os.path.join(folder, f"im{start + k + 1}.png")) for k in range(self.frames_per_item)]
        )
        if self.crop is not None:
            if self.random:
                frames = random_crop_flip(frames, self.crop)
            else:
                frames = center_crop(frames, self.crop)
        return to_float(frames)
