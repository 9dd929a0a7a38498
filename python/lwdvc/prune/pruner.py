"""``Pruner``: global MAC-budgeted channel masks with gradient decay (and STE / mask / wd modes).

Per step (``pruner.step()`` before the forward pass):

1. ``beta`` is set on every mask parametrization (``ste`` 1, ``mask`` 0, ``gd`` the sigmoid decay
   beta(t), ``wd`` 1);
2. every ``update_every`` steps the masks are recomputed: the free channels of every group are
   ranked by ``importance / (cost / mean cost) ** cost_exponent`` (importance: L2 norm of all
   producer weights of the channel, normalised to mean 1 per group; cost: the MACs one channel
   of the group takes from the dense decoder), and the shortest prefix of that ranking whose
   removal reaches the current target (a sigmoid ramp from 0 to ``target_mac_reduction``) is
   pruned, measured with the analyses' exact ``macs(kept)`` (``selection="budget"``, default); or
   (``selection="threshold"``) every group keeps the channels whose normalised importance is
   above its learnable threshold, and :meth:`Pruner.loss` pulls a MAC-weighted sigmoid sparsity
   proxy towards the ramped target (:mod:`lwdvc.prune.threshold`).

Masks go through the ``MaskedWeight`` parametrization of :mod:`lwdvc_kernels.masking`, i.e.
``torch.ops.lwdvc.masked_weight``. See docs/method/pruning.md for the full rule.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lwdvc.prune.budget import MacBudget, PrunedGroup
from lwdvc.prune.importance import GroupScorer, normalise_per_group
from lwdvc.prune.scope import PruneConfigError, analyse_modules, check_target, resolve_modules
from lwdvc.prune.threshold import ThresholdSelector, check_threshold_options, protected_channels, standardise_per_group
from lwdvc.schedules import SigmoidSchedule, beta_schedule, target_ramp
from lwdvc_kernels.masking import BatchedMaskedWeights, MaskedWeight, attach_masks, masked_weights

__all__ = ["Pruner", "MODES", "SELECTIONS"]

MODES = ("ste", "mask", "gd", "wd")
SELECTIONS = ("budget", "threshold")


class Pruner:
    """Channel masks on the channel groups of some modules of ``model``, under a global MAC budget.

    Args:
        model: the model being fine-tuned (masks are attached to its submodules in place).
        modules: ``{name: submodule}`` (e.g. ``model.decoder_modules()``), a list of qualified
            submodule names, or None for ``model.decoder_modules()``. Each is traced separately;
            its inputs and outputs are boundaries that are never pruned.
        example_inputs: ``{name: inputs}`` per module (a tensor, a tuple or a dict of kwargs);
            small spatial sizes suffice (MAC fractions do not depend on them).
        target_mac_reduction: fraction of the modules' dense MACs to remove, in (0, 1).
        mode: ``"gd"`` (gradient decay, default), ``"ste"``, ``"mask"`` or ``"wd"``.
        selection: how the masks are chosen: ``"budget"`` (default: global top-k by
            importance / MAC cost meeting the ramped target exactly at every update) or
            ``"threshold"`` (a learnable threshold per group on the normalised importances,
            pulled towards the ramped target by a sigmoid sparsity proxy in :meth:`loss`; train
            :meth:`parameters` with the model). See :mod:`lwdvc.prune.threshold`.
        threshold_tau: ``threshold`` selection: sigmoid temperature of the proxy.
        threshold_lambda: ``threshold`` selection: lambda2 of ``lambda2 * (proxy - target(t))^2``.
        threshold_init: ``threshold`` selection: initial threshold of every group.
        total_steps: T, the fine-tuning length in steps (the beta decay spans it).
        update_every: recompute the masks every this many steps.
        ramp_steps: steps over which the target ramps from 0 up (default ``total_steps // 2``;
            0 applies the full target from the first step).
        ramp_steepness, ramp_center: k and c of the target ramp.
        beta_steepness, beta_center: k and c of beta(t) in ``gd`` mode.
        min_keep: fraction of every group's channels that is never pruned (at least one).
        cost_exponent: alpha in ``importance / cost ** alpha`` (0 ranks by importance only).
        weight_decay: ``wd`` mode's decay coefficient on pruned weights (see :meth:`loss`).
        round_to: every group keeps a multiple of this many channels (capped at its size), and
            the MAC target counts the rounded masks, so ``finalize`` (which compacts with this
            ``round_to`` by default) reaches the target exactly; 8 or 16 suit SIMD widths.
        keep_dense: names of modules in ``modules`` that are never pruned: their MACs count in
            the dense total the target is a fraction of, but none of their channels is masked
            (e.g. a motion decoder whose errors build up over a GOP through warping).

    Raises:
        PruneConfigError: bad target or mode, empty scope, no prunable channel, or a target the
            groups cannot reach (all before any mask is attached).
    """

    def __init__(
        self,
        model: nn.Module,
        modules: Mapping[str, nn.Module] | Sequence[str] | None = None,
        example_inputs: Mapping[str, Any] | None = None,
        *,
        target_mac_reduction: float = 0.65,
        mode: str = "gd",
        selection: str = "budget",
        total_steps: int = 1000,
        update_every: int = 1,
        ramp_steps: int | None = None,
        ramp_steepness: float = 10.0,
        ramp_center: float = 0.5,
        beta_steepness: float = 10.0,
        beta_center: float = 0.5,
        min_keep: float = 0.1,
        cost_exponent: float = 1.0,
        weight_decay: float = 1e-2,
        round_to: int = 1,
        keep_dense: Sequence[str] = (),
        threshold_tau: float = 0.4,
        threshold_lambda: float = 10.0,
        threshold_init: float = -3.0,
    ) -> None:
        self.target = check_target(target_mac_reduction)
        if mode not in MODES:
            raise PruneConfigError(f"mode must be one of {MODES}, got {mode!r}")
        if selection not in SELECTIONS:
            raise PruneConfigError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        check_threshold_options(threshold_tau, threshold_lambda, threshold_init)
        self.selection = selection
        for label, value in (("total_steps", total_steps), ("update_every", update_every)):
            if not isinstance(value, int) or value < 1:
                raise PruneConfigError(f"{label} must be a positive int, got {value!r}")
        if not 0.0 <= min_keep < 1.0:
            raise PruneConfigError(f"min_keep must be in [0, 1), got {min_keep!r}")
        if weight_decay < 0 or cost_exponent < 0:
            raise PruneConfigError("weight_decay and cost_exponent must be >= 0")
        if not isinstance(round_to, int) or round_to < 1:
            raise PruneConfigError(f"round_to must be a positive int, got {round_to!r}")
        self.round_to = round_to
        ramp_steps = total_steps // 2 if ramp_steps is None else int(ramp_steps)
        self.mode, self.total_steps, self.update_every = mode, total_steps, update_every
        self.min_keep, self.cost_exponent, self.weight_decay = (
            float(min_keep), float(cost_exponent), float(weight_decay))
        self.beta_schedule = beta_schedule(total_steps, beta_steepness, beta_center)
        self.target_schedule: SigmoidSchedule | None = (
            target_ramp(ramp_steps, self.target, ramp_steepness, ramp_center) if ramp_steps > 0 else None)

        self.model = model
        self.scope = resolve_modules(model, modules)
        if example_inputs is None:
            raise PruneConfigError("example_inputs is required ({module name: inputs}); for codecs "
                                   "use Pruner.for_codec(model, frame_size=(64, 64), ...)")
        self.example_inputs = dict(example_inputs)
        self.analyses = analyse_modules(self.scope, self.example_inputs)
        self.budget = MacBudget(self.analyses)
        if isinstance(keep_dense, str):
            raise PruneConfigError(f"keep_dense must be a list of module names, got the string {keep_dense!r}")
        unknown = sorted(set(keep_dense) - set(self.scope))
        if unknown:
            raise PruneConfigError(f"keep_dense names modules outside the pruned scope: {unknown} "
                                   f"(scope: {list(self.scope)})")
        self.keep_dense = tuple(keep_dense)
        self.groups: list[PrunedGroup] = [g for g in self.budget.pruned_groups(self.min_keep)
                                          if g.module not in self.keep_dense]
        if not self.groups:
            raise PruneConfigError(f"the modules {list(self.scope)} contain no prunable channel "
                                   "(every group is fixed: module boundaries, coupled outputs, ...)")
        reachable = self.budget.max_reduction(self.groups, round_to)
        if reachable < self.target:
            raise PruneConfigError(
                f"target_mac_reduction {self.target:.3f} cannot be met: pruning every group down to "
                f"min_keep={self.min_keep} (and its fixed channels, round_to={round_to}, "
                f"keep_dense={list(self.keep_dense)}) "
                f"removes only {reachable:.3f} of "
                f"the MACs of {list(self.scope)}")
        total = sum(g.cost * int(g.free.sum()) for g in self.groups)
        self._mean_cost = total / sum(int(g.free.sum()) for g in self.groups)

        beta0 = self._beta_at(0)
        for name, (_, module) in self.scope.items():
            # Only groups the budget may prune get a mask: the others would stay all ones and
            # cost a masked_weight pass per step for nothing.
            pruned = {g.name: g for g in self.groups if g.module == name}
            selected = [grp for grp in self.analyses[name].groups if grp.name in pruned]
            masks = attach_masks(module, selected, beta=beta0)
            for group_name, g in pruned.items():
                g.mask = masks[group_name]
        self._params = [p for _, (_, m) in self.scope.items() for p in _mask_params(m)]
        #: ``with pruner.batched: <forward passes>``: every masked weight of the model computed once,
        #: in one multi-tensor op call, instead of once per module call (see BatchedMaskedWeights).
        self.batched = BatchedMaskedWeights(model)
        self._scorers = [GroupScorer.from_group(self.scope[g.module][1], self.analyses[g.module][g.name])
                         for g in self.groups]
        self.selector: ThresholdSelector | None = None
        if selection == "threshold":
            self.selector = ThresholdSelector(self.groups, self.budget.dense_macs, tau=threshold_tau,
                                              lambda2=threshold_lambda, init=threshold_init, round_to=round_to)
        self._importances: list[torch.Tensor] | None = None
        self._proxy = 0.0
        self._step = 0
        self._beta = beta0
        self._current_target = 0.0
        self._reduction = 0.0
        self._flips = 0
        self._flips_total = 0

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def for_codec(cls, model: nn.Module, frame_size: tuple[int, int] = (64, 64), **kwargs) -> Pruner:
        """Prune ``model.decoder_modules()`` traced on ``model.decoder_example_inputs(*frame_size)``."""
        for attr in ("decoder_modules", "decoder_example_inputs"):
            if not hasattr(model, attr):
                raise PruneConfigError(f"{type(model).__name__} has no {attr}(); use Pruner(model, "
                                       "modules=..., example_inputs=...)")
        return cls(model, model.decoder_modules(), model.decoder_example_inputs(*frame_size), **kwargs)

    # ------------------------------------------------------------------ schedules
    def _beta_at(self, step: int) -> float:
        if self.mode == "gd":
            return self.beta_schedule(step)
        return 0.0 if self.mode == "mask" else 1.0

    def parameters(self) -> list[nn.Parameter]:
        """The pruner's own trainable parameters: the thresholds in ``threshold`` selection
        (one scalar per group, in ``self.groups`` order), none in ``budget`` selection."""
        return [] if self.selector is None else list(self.selector.thresholds)

    def target_at(self, step: int) -> float:
        """The MAC-reduction target in force at ``step``."""
        return self.target if self.target_schedule is None else self.target_schedule(step)

    @property
    def beta(self) -> float:
        return self._beta

    @property
    def step_count(self) -> int:
        return self._step

    # ------------------------------------------------------------------ training-time API
    def step(self) -> dict[str, float]:
        """Advance one training step: set beta, recompute the masks if due. Call before forward.

        Returns:
            :meth:`metrics` after the update.
        """
        self._beta = self._beta_at(self._step)
        for p in self._params:
            p.beta = self._beta
        if self._step % self.update_every == 0:
            self.update_masks(self.target_at(self._step))
        else:
            self._flips = 0
        self._step += 1
        return self.metrics()

    @torch.no_grad()
    def update_masks(self, target: float) -> float:
        """Recompute every mask for a MAC-reduction ``target``; returns the exact reduction.

        ``threshold`` selection: :meth:`update_threshold_masks` (``target`` is then only the value
        the proxy loss pulls towards)."""
        if self.selector is not None:
            return self.update_threshold_masks(target)
        order: list[tuple[float, int, int]] = []
        for gi, (g, scorer) in enumerate(zip(self.groups, self._scorers)):
            importance = normalise_per_group(scorer.norms())
            protected = protected_channels(g, importance)
            ranked = g.free.nonzero().flatten()
            ranked = ranked[torch.argsort(importance[ranked], descending=True, stable=True)]
            cost = (g.cost / self._mean_cost) ** self.cost_exponent if g.cost > 0 else float("inf")
            for ch in ranked[~protected[ranked]].tolist():
                order.append((float(importance[ch]) / cost, gi, ch))
        order.sort()
        kept, reduction = self.budget.select(self.groups, [(gi, ch) for _, gi, ch in order], target,
                                            round_to=self.round_to)
        flips = 0
        for g in self.groups:
            new = kept[g.module][g.name].to(device=g.mask.device, dtype=g.mask.dtype)
            flips += int((new != g.mask).sum())
            g.mask.copy_(new)
        self._flips, self._flips_total = flips, self._flips_total + flips
        self._current_target, self._reduction = target, reduction
        return reduction

    @torch.no_grad()
    def update_threshold_masks(self, target: float) -> float:
        """``threshold`` selection: masks ``1[s_i > t_g]`` (floors and ``round_to`` kept) from the
        current importances; ``target`` is the ramped target :meth:`loss` pulls the proxy to.
        Returns the exact MAC reduction of the new masks (whatever the thresholds give)."""
        self._importances = [standardise_per_group(scorer.norms()) for scorer in self._scorers]
        flips = 0
        for g, keep in zip(self.groups, self.selector.masks(self._importances)):
            new = keep.to(device=g.mask.device, dtype=g.mask.dtype)
            flips += int((new != g.mask).sum())
            g.mask.copy_(new)
        self._flips, self._flips_total = flips, self._flips_total + flips
        self._current_target, self._reduction = target, self.mac_reduction()
        self._proxy = float(self.selector.proxy(self._importances))
        return self._reduction

    def loss(self) -> torch.Tensor:
        """The pruning term of the total loss (the lambda2 slot).

        ``wd`` mode: ``weight_decay / 2 * sum ||(1 - m) * w||^2`` over every masked producer
        tensor (its gradient ``weight_decay * w`` on pruned weights pulls them to zero).
        ``threshold`` selection adds ``threshold_lambda * (proxy - target(t))^2`` with the
        importances of the last mask update (gradient to the thresholds only). Zero otherwise.
        """
        device = next((p.mask.device for p in self._params), torch.device("cpu"))
        total = torch.zeros((), device=device)
        if self.selector is not None and self._importances is not None:
            total = total + self.selector.loss(self._importances, self._current_target).to(device)
        if self.mode != "wd" or self.weight_decay == 0:
            return total
        decay = torch.zeros((), device=device)
        for owner, tensor, param in _mask_params_with_owner(self.scope):
            weight = owner.parametrizations[tensor].original
            shape = [1] * weight.dim()
            shape[param.dim] = -1
            pruned = (1.0 - param.effective_mask()).view(shape)
            decay = decay + (weight * pruned).square().sum()
        return total + 0.5 * self.weight_decay * decay

    # ------------------------------------------------------------------ observability
    def kept_masks(self) -> dict[str, dict[str, torch.Tensor]]:
        """``{module: {group: bool keep-mask}}`` of the pruned groups (CPU)."""
        out: dict[str, dict[str, torch.Tensor]] = {}
        for g in self.groups:
            out.setdefault(g.module, {})[g.name] = g.mask.detach().cpu() > 0.5
        return out

    def mac_reduction(self) -> float:
        """Exact MAC reduction of the current masks (analysis ``macs(kept)``)."""
        return self.budget.reduction(self.kept_masks())

    def metrics(self) -> dict[str, float]:
        """Scalars of the current step for loggers.

        Keys: ``step``, ``target`` (final), ``target_now`` (ramped), ``mac_reduction``, ``macs``,
        ``dense_macs``, ``beta``, ``mask_flips`` (channels that switched at the last update),
        ``mask_flips_total``, ``kept_channels``, ``prunable_channels`` and
        ``sparsity/<module>/<group>`` (pruned fraction of each group). ``threshold`` selection
        adds ``proxy_mac_reduction`` (the MAC-weighted sigmoid proxy at the last update; compare
        with the hard masks' ``mac_reduction`` and ``target_now``: runaway sparsity shows as
        ``mac_reduction`` overshooting the target) and ``threshold/<module>/<group>``.
        """
        kept = sum(int((g.mask > 0.5).sum()) for g in self.groups)
        out = {
            "step": float(self._step), "target": self.target, "target_now": self._current_target,
            "mac_reduction": self._reduction, "macs": float(round((1 - self._reduction) * self.budget.dense_macs)),
            "dense_macs": float(self.budget.dense_macs), "beta": self._beta,
            "mask_flips": float(self._flips), "mask_flips_total": float(self._flips_total),
            "kept_channels": float(kept), "prunable_channels": float(sum(g.size for g in self.groups)),
        }
        for g in self.groups:
            out[f"sparsity/{g.key}"] = 1.0 - float((g.mask > 0.5).sum()) / g.size
        if self.selector is not None:
            out["proxy_mac_reduction"] = self._proxy
            for g, t in zip(self.groups, self.selector.thresholds):
                out[f"threshold/{g.key}"] = float(t.detach())
        return out

    state = metrics

    def state_dict(self) -> dict[str, Any]:
        """Step counter, flip count, masks and (``threshold`` selection) thresholds, to resume."""
        state = {"step": self._step, "flips_total": self._flips_total,
                 "masks": {g.key: g.mask.detach().cpu().clone() for g in self.groups}}
        if self.selector is not None:
            state["thresholds"] = {g.key: float(t.detach()) for g, t in zip(self.groups, self.selector.thresholds)}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (same model, modules and example input shapes)."""
        masks = state["masks"]
        unknown = set(masks) - {g.key for g in self.groups}
        if unknown:
            raise ValueError(f"masks for unknown groups {sorted(unknown)}")
        for g in self.groups:
            if g.key in masks:
                if masks[g.key].shape != g.mask.shape:
                    raise ValueError(f"{g.key}: mask {tuple(masks[g.key].shape)} != {tuple(g.mask.shape)}")
                g.mask.copy_(masks[g.key])
        thresholds = state.get("thresholds", {})
        if thresholds and self.selector is None:
            raise ValueError("the state has thresholds but this pruner uses budget selection")
        if self.selector is not None:
            with torch.no_grad():
                for g, t in zip(self.groups, self.selector.thresholds):
                    if g.key in thresholds:
                        t.fill_(float(thresholds[g.key]))
        self._step, self._flips_total = int(state["step"]), int(state["flips_total"])
        self._reduction = self.mac_reduction()

    def __repr__(self) -> str:
        return (f"Pruner(mode={self.mode!r}, selection={self.selection!r}, target={self.target}, "
                f"modules={list(self.scope)}, groups={len(self.groups)}, step={self._step}, "
                f"mac_reduction={self._reduction:.4f})")


def _mask_params_with_owner(scope: dict[str, tuple[str, nn.Module]]):
    for _, (_, module) in scope.items():
        for _, owner, tensor, param in masked_weights(module):
            yield owner, tensor, param


def _mask_params(module: nn.Module) -> list[MaskedWeight]:
    return [p for p in module.modules() if isinstance(p, MaskedWeight)]
