"""Channel masks as ``torch.nn.utils.parametrize`` parametrizations (the mask contract).

Contract (the pruner and :func:`lwdvc_kernels.compact` rely on it):

* ``MaskedWeight(mask, dim, group, beta=0.0, index=None)`` is registered on the ``weight``
  and ``bias`` of every *producer* of a channel group: conv / linear / deformable-conv output
  channels (``weight`` dim 0), transposed conv (``weight`` [in, out/groups, kh, kw], dim 1),
  biases (dim 0), affine norms (``weight``/``bias`` dim 0), depthwise convs, parameters added to a
  feature map. GDN/IGDN ``beta``/``gamma`` are never masked: a zero input stays zero through GDN.
* Its forward is ``lwdvc_kernels.ops.masked_weight(w, m, self.beta, self.dim)`` with
  ``m = self.mask`` or, when the producer's channels map onto the group's channels through an
  index (a conv before a PixelShuffle writes ``r*r`` channels per group channel),
  ``m = self.mask[self.index]``.
* All producers of one group share the SAME mask tensor: float 0/1, length ``group.size``,
  registered as a buffer on every parametrization. The pruner updates it in place once per
  group (``mask.copy_(...)``); ``beta`` is a plain float attribute it may set on every
  parametrization (:func:`set_beta`).
* A pruned channel's producer weight and bias are zero, so the channel carries exact zeros;
  :func:`lwdvc_kernels.compact` removes it and the compacted model equals the masked model.

Inside ``with batched_masked_weights(model):`` (or a reusable :class:`BatchedMaskedWeights`)
every masked tensor of the model is computed by one ``lwdvc_kernels.ops.masked_weights`` call on
entry, and each parametrization returns its precomputed tensor: same values and gradients as the
per-weight path, one op call and one autograd node for the whole model.
"""
from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn.utils import parametrize

if TYPE_CHECKING:  # pragma: no cover
    from lwdvc_kernels.compaction.groups import ChannelGroup

__all__ = ["MaskedWeight", "attach_masks", "detach_masks", "masks_of", "masked_weights", "set_beta", "has_masks",
           "BatchedMaskedWeights", "batched_masked_weights"]


class MaskedWeight(nn.Module):
    """Parametrization ``w -> w * mask`` along ``dim`` with the gradient-decay backward.

    Args:
        mask: float 0/1 [group size], shared by every producer of the group (kept by reference).
        dim: channel dim of the parametrized tensor.
        group: name of the channel group the mask belongs to.
        beta: gradient-decay factor for pruned entries (0 = plain masking, 1 = STE).
        index: optional long [tensor.size(dim)] mapping each channel of the tensor to its
            group channel; ``None`` when the tensor's channels are the group's channels.
    """

    def __init__(
        self,
        mask: torch.Tensor,
        dim: int,
        group: str,
        beta: float = 0.0,
        index: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(mask, torch.Tensor) or mask.dim() != 1 or not mask.is_floating_point():
            raise ValueError(f"MaskedWeight({group!r}): mask must be a 1-D float tensor")
        self.register_buffer("mask", mask)
        self.register_buffer("index", None if index is None else index.to(torch.long))
        self.dim = int(dim)
        self.group = str(group)
        self.beta = float(beta)
        # (input, output) precomputed by BatchedMaskedWeights for the current forward pass.
        self._batched: tuple[torch.Tensor, torch.Tensor] | None = None

    def effective_mask(self) -> torch.Tensor:
        """Mask with one entry per channel of the parametrized tensor along ``dim``."""
        return self.mask if self.index is None else self.mask[self.index]

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self._batched is not None and self._batched[0] is weight:
            return self._batched[1]
        from lwdvc_kernels.ops import masked_weight

        return masked_weight(weight, self.effective_mask(), self.beta, self.dim)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_batched"] = None  # a batch belongs to one forward pass of this model, not to copies
        return state

    def extra_repr(self) -> str:
        return f"group={self.group!r}, dim={self.dim}, beta={self.beta}"


def _owner(model: nn.Module, qualname: str) -> nn.Module:
    try:
        return model.get_submodule(qualname) if qualname else model
    except AttributeError as err:
        raise ValueError(f"no submodule {qualname!r} in {type(model).__name__}") from err


def attach_masks(
    model: nn.Module, groups: list[ChannelGroup], beta: float = 0.0
) -> dict[str, torch.Tensor]:
    """Register a :class:`MaskedWeight` on every producer tensor of every prunable group.

    Args:
        model: the module the groups were computed on (by :func:`lwdvc_kernels.channel_groups`).
        groups: the channel groups (an analysis object's ``groups`` or any list of groups).
        beta: initial gradient-decay factor.

    Returns:
        ``{group name: mask}``; each mask is float32 ones [group.size] on the group's device,
        shared by all parametrizations of that group (update it in place).
    """
    groups = list(getattr(groups, "groups", groups))
    masks: dict[str, torch.Tensor] = {}
    for group in groups:
        if not group.prunable:
            continue
        producers = [m for m in group.members if m.role == "producer"]
        if not producers:
            continue
        device = getattr(_owner(model, producers[0].module), producers[0].tensor).device
        mask = torch.ones(group.size, dtype=torch.float32, device=device)
        for member in producers:
            owner = _owner(model, member.module)
            if parametrize.is_parametrized(owner, member.tensor):
                raise ValueError(
                    f"{member.module}.{member.tensor} is already parametrized; detach_masks first"
                )
            units = member.units.to(device)
            identity = units.numel() == group.size and bool(
                (units == torch.arange(group.size, device=device)).all()
            )
            param = MaskedWeight(mask, member.dim, group.name, beta, None if identity else units)
            parametrize.register_parametrization(owner, member.tensor, param, unsafe=True)
        masks[group.name] = mask
    return masks


def masked_weights(model: nn.Module):
    """Yields ``(qualified name, owner module, tensor name, MaskedWeight)`` for every mask on ``model``."""
    for qualname, module in model.named_modules():
        plist = getattr(module, "parametrizations", None)
        if plist is None:
            continue
        for tensor_name in list(plist.keys()):
            for param in plist[tensor_name]:
                if isinstance(param, MaskedWeight):
                    yield qualname, module, tensor_name, param


def has_masks(model: nn.Module) -> bool:
    """True when at least one :class:`MaskedWeight` is registered in ``model``."""
    return next(masked_weights(model), None) is not None


def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """Read the group masks back: ``{group name: bool keep-mask [group size]}``.

    Raises:
        ValueError: if two parametrizations of one group hold different masks.
    """
    masks: dict[str, torch.Tensor] = {}
    for qualname, _, tensor_name, param in masked_weights(model):
        keep = param.mask.detach() > 0.5
        if param.group in masks:
            if masks[param.group].shape != keep.shape or not torch.equal(masks[param.group], keep.cpu()):
                raise ValueError(
                    f"group {param.group!r}: mask on {qualname}.{tensor_name} differs from the "
                    "group's other producers; producers of one group must share one mask"
                )
        else:
            masks[param.group] = keep.cpu()
    return masks


def set_beta(model: nn.Module, beta: float) -> None:
    """Set the gradient-decay factor of every :class:`MaskedWeight` in ``model``."""
    for _, _, _, param in masked_weights(model):
        param.beta = float(beta)


def _own_class(module: nn.Module) -> None:
    """Give ``module`` a private copy of its parametrized class.

    ``copy.deepcopy`` shares the dynamically created ``Parametrized<Layer>`` class between the
    original and the copy, and removing a parametrization deletes a property from that class,
    which would break the original. A private class keeps the removal local.
    """
    cls = type(module)
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


def detach_masks(model: nn.Module, apply: bool = False) -> None:
    """Remove every :class:`MaskedWeight` parametrization (other parametrizations stay).

    Args:
        model: the model, modified in place.
        apply: False keeps the original (unmasked) weights; True bakes the masks in
            (pruned channels become zero).
    """
    for _, module, tensor_name, _ in list(masked_weights(model)):
        _own_class(module)
        plist = module.parametrizations[tensor_name]
        if len(plist) != 1:
            raise ValueError(
                f"{type(module).__name__}.{tensor_name} has {len(plist)} parametrizations; "
                "only a single MaskedWeight can be detached"
            )
        parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=apply)


class BatchedMaskedWeights:
    """Context manager: every masked tensor of ``model`` from one ``masked_weights`` call.

    On entry, the output of every :class:`MaskedWeight` that is the first parametrization of its
    tensor is computed from the current original tensor and mask, all of them in one
    :func:`lwdvc_kernels.ops.masked_weights` call per (device, beta) (normally exactly one);
    inside the block each parametrization returns its precomputed tensor, however often the
    tensor is read. Values and gradients are those of the per-weight path; on exit the
    parametrizations compute per weight again. Enter it around each forward pass (after an
    optimizer step the originals have changed); the backward pass may run after the block.

    The instance collects the parametrizations once, so build it after :func:`attach_masks` and
    reuse it every step; build a new one after masks are attached or detached. Nested use
    restores the outer block's tensors on exit.

    Args:
        model: module whose :class:`MaskedWeight` parametrizations are batched.
        backend: ``masked_weights`` backend (``"auto"``, ``"reference"`` or ``"triton"``).
    """

    def __init__(self, model: nn.Module, backend: str = "auto") -> None:
        self.backend = backend
        # (parametrization list, its first MaskedWeight); other positions keep the per-weight path.
        self._entries = []
        for _, module, tensor_name, param in masked_weights(model):
            plist = module.parametrizations[tensor_name]
            if plist[0] is param and plist.is_tensor:
                self._entries.append((plist, param))
        self._saved: list[list[tuple[torch.Tensor, torch.Tensor] | None]] = []

    def __len__(self) -> int:
        """Number of parametrizations computed in the batch."""
        return len(self._entries)

    def __enter__(self) -> BatchedMaskedWeights:
        from lwdvc_kernels.ops import masked_weights as masked_weights_op

        batches = defaultdict(list)
        for plist, param in self._entries:
            batches[(plist.original.device, param.beta)].append((plist.original, param))
        computed = []
        for (_, beta), batch in batches.items():
            weights = [weight for weight, _ in batch]
            outs = masked_weights_op(weights, [p.effective_mask() for _, p in batch], beta,
                                     [p.dim for _, p in batch], backend=self.backend)
            computed += [(param, (weight, out)) for (weight, param), out in zip(batch, outs)]
        # Installed only once every batch succeeded, so a failed entry leaves nothing behind.
        self._saved.append([param._batched for _, param in self._entries])
        for param, entry in computed:
            param._batched = entry
        return self

    def __exit__(self, *exc_info) -> None:
        for (_, param), saved in zip(self._entries, self._saved.pop()):
            param._batched = saved


def batched_masked_weights(model: nn.Module, backend: str = "auto") -> BatchedMaskedWeights:
    """``with batched_masked_weights(model): out = model(x)``: see :class:`BatchedMaskedWeights`."""
    return BatchedMaskedWeights(model, backend)
