"""Training checkpoints: atomic writes, code-free loading, RNG state capture and restore.

A checkpoint is a ``torch.save``-d dict of tensors and plain values only, so it loads with
``torch.load(..., weights_only=True)``:

==============  =============================================================
key             content
==============  =============================================================
``format``      ``"lwdvc-train-checkpoint"`` and ``version`` (int)
``config``      the training configuration as a JSON string
``codec``       the codec configuration as a JSON string
``model``       the model state_dict
``optimizer``   optimiser state_dict
``scheduler``   learning-rate scheduler state_dict
``step``        optimisation steps done
``rng``         list (one per data-parallel rank) of torch/numpy/python RNG states
``sampler``     data sampler position ``{"epoch", "offset", "batches"}``
``history``     list of logged ``{"step", "loss", "bpp", "psnr", "lr"}`` records
==============  =============================================================
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import time
from typing import Any

import numpy as np
import torch

from lwdvc.errors import InputFileError

__all__ = ["FORMAT", "VERSION", "CheckpointError", "save_atomic", "copy_atomic", "write_text_atomic",
           "remove_stale_temp_files", "load_checkpoint",
           "rng_state", "set_rng_state", "checkpoint_codec", "check_codec_matches"]

FORMAT = "lwdvc-train-checkpoint"
VERSION = 1


class CheckpointError(InputFileError):
    """A checkpoint file is missing, unreadable, of another format or of another codec."""


#: Names of the temporary files :func:`save_atomic` writes (``tempfile.mkstemp``'s 8 characters).
_TEMP_NAME = re.compile(r"\.tmp-[a-z0-9_]{8}\.pt")
#: A temporary file untouched for this many seconds is left over from a killed write.
STALE_TEMP_SECONDS = 60.0


def remove_stale_temp_files(folder: str) -> list[str]:
    """Delete the temporary files of killed :func:`save_atomic` writes in ``folder``: only names
    of its own pattern (``.tmp-XXXXXXXX.pt``) not modified for :data:`STALE_TEMP_SECONDS` (a
    write in progress keeps touching its file). Returns the paths removed."""
    removed = []
    now = time.time()
    with os.scandir(folder) as entries:
        for entry in entries:
            if not _TEMP_NAME.fullmatch(entry.name):
                continue
            try:
                if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(entry.path)
                    removed.append(entry.path)
            except OSError:  # removed meanwhile, or not ours to remove
                continue
    return removed


def _replace_atomically(path: str, write, suffix: str, mode: str, permissions: int | None = None) -> str:
    """Write a temporary file next to ``path`` with ``write(file)`` (opened with ``mode``), fsync it,
    give it ``permissions`` (masked by the umask; None keeps mkstemp's 0600), then ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(handle, mode) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if permissions is not None:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, permissions & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_atomic(payload: dict[str, Any], path: str | os.PathLike) -> str:
    """Write ``payload`` with ``torch.save`` to a temporary file, fsync it, then ``os.replace``.

    A crash at any moment leaves either the previous file or the new one, never a partial file;
    temporary files that killed writes left in the folder are removed after a successful write
    (:func:`remove_stale_temp_files`).

    Returns:
        The path written.
    """
    path = _replace_atomically(os.fspath(path), lambda file: torch.save(payload, file), ".pt", "wb")
    remove_stale_temp_files(os.path.dirname(os.path.abspath(path)))
    return path


def copy_atomic(source: str | os.PathLike, target: str | os.PathLike) -> str:
    """Copy the file ``source`` to ``target`` atomically (temporary file, fsync, ``os.replace``)."""
    def copy(file) -> None:
        with open(source, "rb") as original:
            shutil.copyfileobj(original, file)

    return _replace_atomically(os.fspath(target), copy, ".pt", "wb")


def write_text_atomic(path: str | os.PathLike, text: str) -> str:
    """Replace the text file ``path`` atomically (temporary file, fsync, ``os.replace``), with the
    permissions a plain ``open(path, "w")`` would give. Returns the path written."""
    return _replace_atomically(os.fspath(path), lambda file: file.write(text), ".txt", "w", 0o666)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a training checkpoint without executing code (``weights_only=True``).

    Raises:
        CheckpointError: no such file, not loadable, or not an lwdvc training checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt / foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else ''}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lwdvc training checkpoint "
                              f"(expected format {FORMAT!r})")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {payload.get('version')}, "
                              f"this lwdvc reads version {VERSION}")
    return payload


def checkpoint_codec(payload: dict[str, Any]) -> dict[str, Any]:
    """The codec configuration stored in a loaded checkpoint."""
    return json.loads(payload["codec"])


def check_codec_matches(payload: dict[str, Any], expected: dict[str, Any], path: str) -> None:
    """Raise :class:`CheckpointError` unless the checkpoint holds the ``expected`` codec config."""
    stored = checkpoint_codec(payload)
    if stored != expected:
        raise CheckpointError(
            f"checkpoint {path} was written for codec {stored.get('family')!r} "
            f"(width {stored.get('width')}, intra width {stored.get('intra_width')}, "
            f"{stored.get('anchors')} rate points), not for {expected.get('family')!r} "
            f"(width {expected.get('width')}, intra width {expected.get('intra_width')}, "
            f"{expected.get('anchors')} rate points)")


def rng_state() -> dict[str, Any]:
    """Current torch, numpy and python RNG states as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached"]))
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss"]))
