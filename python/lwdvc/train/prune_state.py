"""Save a pruned (masked) student and compact it again later, e.g. with another ``round_to``."""
from __future__ import annotations

import json
import os
import re

import torch

from lwdvc.checkpoint import save_atomic

__all__ = ["PRUNE_FORMAT", "save_prune_state", "compact_prune_state"]

PRUNE_FORMAT = "lwdvc-prune-state"


def save_prune_state(path: str | os.PathLike, student, pruner, config) -> str:
    """Write the masked student's weights, its masks and the settings (loads with weights_only).

    Args:
        path: output ``.pt`` file (written atomically).
        student: the masked VideoCodec (``prune_codec(...)["student"]``).
        pruner: its Pruner.
        config: the PruneConfig used.
    """
    return save_atomic({"format": PRUNE_FORMAT, "version": 1, "codec": json.dumps(student.config, sort_keys=True),
                        "prune_config": config.to_json(), "model": student.state_dict(),
                        "pruner": pruner.state_dict()}, path)


#: The entries of a prune state and what each holds.
_ENTRIES = {"codec": "the codec config", "prune_config": "the pruning settings", "model": "the masked weights",
            "pruner": "the pruner's masks"}


def _codec_text(config: dict) -> str:
    return f"{config.get('family')!r} (width {config.get('width')}, intra width {config.get('intra_width')})"


def _weights_codec(state: dict) -> str:
    """What codec a state_dict's tensors look like: the family whose keys they carry, and the
    P-frame width their layer shapes suggest (compared with the smallest build of that family)."""
    from lwdvc.models.video_codec import FAMILIES, VideoCodec

    def plain(key: str) -> str | None:  # the dense name of a parametrized tensor; None for mask buffers
        if ".parametrizations." not in key:
            return key
        return re.sub(r"\.parametrizations\.(\w+)\.original$", r".\1", key) if key.endswith(".original") else None

    stored = {plain(k): v for k, v in state.items() if isinstance(v, torch.Tensor) and plain(k)}
    for family in FAMILIES:
        probe = VideoCodec(family, width=0.125, anchors=1)
        reference = {k: v for k, v in probe.state_dict().items() if "q_scale" not in k}
        if set(reference) != {k for k in stored if "q_scale" not in k}:
            continue
        key = max((k for k in reference if k.startswith("inter.") and reference[k].dim() > 1),
                  key=lambda k: reference[k].shape[0])
        width = 0.125 * stored[key].shape[0] / reference[key].shape[0]
        return f"{family!r} (P-frame width about {width:.3g})"
    return "another codec (its keys fit no family)"


def _load_student(student, state, path: str) -> None:
    """Load the masked weights, or raise CheckpointError naming the stored and the weights' codec."""
    from lwdvc.checkpoint import CheckpointError
    from lwdvc.models.zoo import StateDictMismatchError, load_state_dict_checked

    if not isinstance(state, dict):
        raise CheckpointError(f"prune state {path}: its 'model' entry is not a state_dict")
    try:
        load_state_dict_checked(student, state)
    except StateDictMismatchError:
        raise CheckpointError(f"prune state {path} is for codec {_codec_text(student.config)}, but its weights "
                              f"are of {_weights_codec(state)}") from None


def _entries(payload, path: str) -> None:
    from lwdvc.checkpoint import CheckpointError

    if not isinstance(payload, dict) or payload.get("format") != PRUNE_FORMAT:
        raise CheckpointError(f"{path} is not an lwdvc prune state (written by `lwdvc prune`)")
    missing = [f"{key!r} ({what})" for key, what in _ENTRIES.items() if key not in payload]
    if missing:
        raise CheckpointError(f"prune state {path} has no {', no '.join(missing)}")
    pruner = payload["pruner"]
    if not isinstance(pruner, dict) or not isinstance(pruner.get("masks"), dict):
        raise CheckpointError(f"prune state {path}: its 'pruner' entry holds no channel masks ('masks')")


def compact_prune_state(path: str | os.PathLike, round_to: int | None = None, verify: bool = True):
    """Rebuild the masked student of a prune state and compact it.

    Returns:
        (compacted VideoCodec, finalize report).

    Raises:
        CheckpointError: the file is missing, not a prune state, lacks an entry, or its weights
            or masks are of another codec than the one it names.
    """
    from lwdvc.checkpoint import CheckpointError
    from lwdvc.errors import UserError
    from lwdvc.models.video_codec import VideoCodec
    from lwdvc.prune import Pruner, finalize
    from lwdvc.train.finetune import PruneConfig

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"prune state not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot read prune state {path}: {type(error).__name__}") from error
    _entries(payload, path)
    try:
        config = PruneConfig(**json.loads(payload["prune_config"]))
        student = VideoCodec.from_config(json.loads(payload["codec"]))
    except (TypeError, ValueError) as error:  # bad JSON, unknown or bad settings
        if isinstance(error, UserError):
            raise CheckpointError(f"prune state {path}: {error}") from error
        raise CheckpointError(f"prune state {path} holds unreadable settings: {error}") from error
    pruner = Pruner.for_codec(student.inter, frame_size=config.analysis_size, target_mac_reduction=config.target,
                              mode=config.mode, selection=config.selection, total_steps=config.steps,
                              round_to=config.round_to, keep_dense=list(config.keep_dense))
    _load_student(student, payload["model"], path)
    try:
        pruner.load_state_dict(payload["pruner"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"prune state {path}: its masks do not fit codec {_codec_text(student.config)}: "
                              f"{error}") from error
    small, report = finalize(pruner, round_to=round_to, verify=verify, return_report=True)
    student.inter = small
    return student.eval(), report
