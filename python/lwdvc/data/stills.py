"""Still photographs shipped by a registry package, moved by a smooth camera path into clips.

``scikit-image`` carries a set of photographs and textures under ``skimage/data/``. They are
located on disk without importing ``skimage`` (only its files are used) and decoded with PyAV.
Each still becomes a short clip: a window that pans and zooms smoothly across the photograph,
resampled bilinearly, so the frames move like a camera over a static scene (real texture,
synthetic but known motion). None of them is related to the held-out test clip.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from lwdvc.errors import BadArgumentError

from .clips import package_dirs
from .png_folder import read_png
from .sequence import FrameSequence
from .transforms import resize_frames, scaled_size

__all__ = ["STILLS", "MovingStillSequence", "still_data_dir", "still_sequences"]

PACKAGE = "skimage"
PIP_NAME = "scikit-image"

#: Photographs and textures of scikit-image's wheel used as training stills (gray ones are
#: replicated to RGB).
STILLS = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png",
          "motorcycle_left.png", "retina.jpg", "rocket.jpg", "brick.png", "camera.png",
          "grass.png", "gravel.png")


def still_data_dir() -> str:
    """Directory holding scikit-image's sample images.

    Raises:
        FileNotFoundError: scikit-image is not installed (says ``pip install scikit-image``).
    """
    for package_dir in package_dirs(PACKAGE):
        data_dir = os.path.join(package_dir, "data")
        if os.path.isfile(os.path.join(data_dir, STILLS[0])):
            return data_dir
    raise FileNotFoundError(
        f"the embedded stills come from the {PIP_NAME!r} package, which was not found; "
        f"install it with `pip install {PIP_NAME}` (it is only used for its sample images)")


def camera_path(frames: int, generator: torch.Generator, max_speed: float = 2.0,
                max_zoom: float = 0.01) -> torch.Tensor:
    """A smooth random camera path: per frame (shift x, shift y, zoom), as [frames, 3].

    The pan speed is drawn up to ``max_speed`` pixels per frame and turns slowly (a quarter
    turn over the clip at most); the zoom changes by up to ``max_zoom`` per frame.
    """
    speed = max_speed * torch.rand((), generator=generator).item()
    heading = 2 * math.pi * torch.rand((), generator=generator).item()
    turn = (math.pi / 2) * (2 * torch.rand((), generator=generator).item() - 1) / max(1, frames - 1)
    zoom_rate = max_zoom * (2 * torch.rand((), generator=generator).item() - 1)
    path, x, y = [], 0.0, 0.0
    for t in range(frames):
        path.append((x, y, (1 + zoom_rate) ** t))
        angle = heading + turn * t
        x, y = x + speed * math.cos(angle), y + speed * math.sin(angle)
    return torch.tensor(path, dtype=torch.float64)


class MovingStillSequence(FrameSequence):
    """A still image seen through a window that follows a smooth camera path.

    Frame ``t`` is the window (a fraction ``window`` of the image side, centred) shifted and
    zoomed by :func:`camera_path`; the path is scaled down so it never leaves the image.
    Frames are rendered once, at output size, and held as uint8.

    Args:
        image: uint8 [3, H, W] (or [1, H, W], replicated).
        frames: clip length.
        seed: seeds the camera path.
        window: window side as a fraction of the image side, in (0, 1).
        max_side: optional bound on the longest side of the output frames.
        name: display name.

    Raises:
        BadArgumentError: bad image shape or dtype, frames < 1, window outside (0, 1).
    """

    def __init__(self, image: torch.Tensor, frames: int = 16, seed: int = 0, window: float = 0.8,
                 max_side: int | None = None, name: str = "still") -> None:
        super().__init__(scale=None, max_side=None)  # frames are rendered at output size
        if not isinstance(image, torch.Tensor) or image.dtype != torch.uint8 or image.dim() != 3 \
                or image.shape[0] not in (1, 3):
            raise BadArgumentError(f"image must be uint8 [3, H, W] or [1, H, W], got "
                                   f"{getattr(image, 'dtype', type(image).__name__)} "
                                   f"{list(getattr(image, 'shape', []))}")
        if frames < 1:
            raise BadArgumentError(f"frames must be >= 1, got {frames}")
        if not 0.0 < window < 1.0:
            raise BadArgumentError(f"window must be in (0, 1), got {window}")
        self.name = name
        image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
        height, width = image.shape[-2:]
        out_h, out_w = scaled_size(int(height * window) // 2 * 2, int(width * window) // 2 * 2,
                                   max_side=max_side)
        path = camera_path(frames, torch.Generator().manual_seed(seed))
        self._frames = self._render(image, path, window, (out_h, out_w))
        self.source_size = (out_h, out_w)
        self._length = frames

    @staticmethod
    def _render(image: torch.Tensor, path: torch.Tensor, window: float,
                size: tuple[int, int]) -> torch.Tensor:
        """uint8 [T, 3, size] frames of ``image`` [3, H, W] along ``path`` [T, 3].

        In the image's [-1, 1] coordinates the window's half-extent is ``window / zoom``
        (zoom clamped so that it fits); the path's shifts are scaled by one factor so that every
        window stays inside the image.
        """
        height, width = image.shape[-2:]
        half = window / path[:, 2].clamp(min=window)                       # [T], <= 1
        shift = path[:, :2] * torch.tensor([2.0 / width, 2.0 / height], dtype=path.dtype)
        reach = shift.abs().max().item()
        fit = 1.0 if reach == 0 else min(1.0, (1 - half).min().item() / reach)
        # anti-aliased downscale first, so that the window maps about 1:1 onto the output
        source_size = (min(height, math.ceil(size[0] / window)), min(width, math.ceil(size[1] / window)))
        source = resize_frames(image, source_size).float().unsqueeze(0) / 255.0
        theta = torch.zeros(len(path), 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = half.float()
        theta[:, :, 2] = (shift * fit).float()
        grid = F.affine_grid(theta, [len(path), 3, *size], align_corners=False)
        frames = F.grid_sample(source.expand(len(path), -1, -1, -1), grid, mode="bilinear",
                               padding_mode="border", align_corners=False)
        return (frames.clamp(0, 1) * 255).round().to(torch.uint8)

    def _read_frame(self, index: int) -> torch.Tensor:
        return self._frames[index]


def still_sequences(frames: int = 16, max_side: int | None = None, seed: int = 0,
                    names: tuple[str, ...] = STILLS) -> list[MovingStillSequence]:
    """One :class:`MovingStillSequence` per embedded still (camera path seeded by ``seed``).

    Raises:
        FileNotFoundError: scikit-image missing, or a still missing from it (names the path).
    """
    data_dir = still_data_dir()
    sequences = []
    for index, file_name in enumerate(names):
        path = os.path.join(data_dir, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"embedded still {path} is missing; reinstall with "
                                    f"`pip install --force-reinstall {PIP_NAME}`")
        sequences.append(MovingStillSequence(read_png(path), frames=frames, seed=seed * 1000 + index,
                                             max_side=max_side, name=os.path.splitext(file_name)[0]))
    return sequences
