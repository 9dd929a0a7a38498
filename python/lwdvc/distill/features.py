"""Feature capture by forward hooks and the channel-normalised feature distance."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["normalise_channels", "feature_distance", "FeatureRecorder", "output_tensors"]


def normalise_channels(feature: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``F / ||F||_2`` per sample and channel over the spatial positions.

    Args:
        feature: [N, C, *spatial] (2-D [N, C] features are normalised over C instead).
        eps: smoothing of the norm, ``sqrt(sum F^2 + eps^2)``: an all-zero (pruned) channel
            stays zero and its gradient stays finite.

    Returns:
        Tensor shaped like ``feature`` whose every (n, c) slice has unit L2 norm (or is zero).
    """
    if feature.dim() < 2:
        raise ValueError(f"features must be [N, C, ...], got shape {tuple(feature.shape)}")
    dims = tuple(range(2, feature.dim())) if feature.dim() > 2 else (1,)
    norm = (feature.float().square().sum(dim=dims, keepdim=True) + eps * eps).sqrt()
    return feature.float() / norm


def feature_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Distance of channel-normalised features: mean over (n, c) of ``||F^_s - F^_t||^2``.

    Each term is a squared distance of unit vectors (``2 - 2 cos``), so the result lies in
    [0, 4] whatever the layer's scale or spatial size.

    Args:
        student, teacher: [N, C, *spatial], same shape.

    Returns:
        Scalar float32 tensor (differentiable in ``student``).
    """
    if student.shape != teacher.shape:
        raise ValueError(f"student feature {tuple(student.shape)} and teacher feature "
                         f"{tuple(teacher.shape)} differ in shape")
    diff = normalise_channels(student) - normalise_channels(teacher.detach())
    if diff.dim() == 2:
        return diff.square().sum(1).mean()
    return diff.flatten(2).square().sum(2).mean()


def output_tensors(output) -> list[torch.Tensor]:
    """Floating tensors of a module output (a tensor, or nested tuples/lists/dicts of them)."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, (list, tuple)):
        return [t for o in output for t in output_tensors(o)]
    if isinstance(output, dict):
        return [t for o in output.values() for t in output_tensors(o)]
    return []


class FeatureRecorder:
    """Forward hooks that record the outputs of named submodules while armed.

    Args:
        model: the model to hook.
        layers: qualified submodule names.
        detach: store detached outputs (for the teacher).

    Attributes:
        features: ``{layer: [output tensors of each call, in call order]}``.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], detach: bool = False) -> None:
        self.features: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        self.armed = False
        self._handles = []
        for name in layers:
            try:
                module = model.get_submodule(name)
            except AttributeError as err:
                raise ValueError(f"no submodule {name!r} in {type(model).__name__}") from err
            self._handles.append(module.register_forward_hook(self._hook(name, detach)))

    def _hook(self, name: str, detach: bool):
        def hook(module, args, output):
            if self.armed:
                tensors = output_tensors(output)
                self.features[name].extend(t.detach() if detach else t for t in tensors)
        return hook

    def clear(self) -> None:
        for values in self.features.values():
            values.clear()

    def remove(self) -> None:
        """Remove the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.clear()
