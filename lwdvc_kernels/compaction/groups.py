"""Channel groups and MAC accounting built from a trace.

A *unit* is a union-find class of channel elements (channels removed together). A *group* is
the set of units written by the same producer tensors: every producer tensor (conv weight out
dim, bias, affine norm, ...) maps all its channels into exactly one group, so the pruner can
mask each group with one shared mask of length ``group.size``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lwdvc_kernels.compaction.graph import ChannelGraph
from lwdvc_kernels.compaction.stored_records import layer_of

__all__ = ["Member", "ChannelGroup", "ChannelAnalysis", "build_analysis"]


@dataclass
class Member:
    """The positions of one dim of one tensor of one module that belong to a group.

    Attributes:
        module: qualified name of the module owning the tensor ('' for the root).
        tensor: attribute name of the parameter/buffer (e.g. 'weight', 'bias', 'gamma').
        dim: the dim of the tensor indexed by channels.
        role: 'producer' (masked by the group's mask), 'consumer' or 'passive' (only sliced).
        positions: long [k], indices along ``dim`` that belong to the group.
        units: long [k], the group channel of each position (several positions may share one,
            e.g. the ``r*r`` channels a PixelShuffle folds into one).
    """

    module: str
    tensor: str
    dim: int
    role: str
    positions: torch.Tensor
    units: torch.Tensor


@dataclass
class ChannelGroup:
    """Channels that are kept or removed together, unit by unit.

    Attributes:
        name: qualified name of the first producing layer (in execution order).
        size: number of channels (units) of the group.
        members: every tensor dim the group touches.
        fixed: bool [size], True for channels that must be kept (module boundary, an op that
            does not map zero to zero before a channel-mixing consumer, offsets, ...).
        reasons: why each fixed channel is fixed ('' for free channels).
    """

    name: str
    size: int
    members: list[Member]
    fixed: torch.Tensor
    reasons: list[str] = field(default_factory=list)

    @property
    def prunable(self) -> bool:
        """True when at least one channel may be removed (and the group has more than one)."""
        return self.size > 1 and not bool(self.fixed.all())

    def producers(self) -> list[Member]:
        return [m for m in self.members if m.role == "producer"]


@dataclass
class _Factor:
    fixed: int
    parts: list[tuple[int, torch.Tensor]]


class ChannelAnalysis:
    """Result of :func:`lwdvc_kernels.channel_groups`.

    Attributes:
        groups: list of :class:`ChannelGroup` in execution order of their first producer.
        dense_macs: MACs of the unpruned module on the example inputs (equals ``count_macs``).
        handlers: the layer handlers of the trace (slicing finalises layers with the same ones).
    """

    def __init__(self, groups: list[ChannelGroup], terms: list[tuple[int, list[_Factor], int]]) -> None:
        self.groups = groups
        self._by_name = {g.name: g for g in groups}
        self._index = {g.name: i for i, g in enumerate(groups)}
        self._terms = terms
        self.dense_macs = self.macs({})
        #: the ``{module type: handler}`` the trace used (registered plus per-call ones)
        self.handlers: dict | None = None
        #: weight-norm repairs applied after slicing (``derived.NormRescale``)
        self.rescales: list = []

    def __getitem__(self, name: str) -> ChannelGroup:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)

    @property
    def prunable(self) -> list[ChannelGroup]:
        return [g for g in self.groups if g.prunable]

    def keep_masks(self, kept: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Normalise ``{name: int count | bool keep-mask}`` to bool masks for every group.

        An int keeps the fixed channels first, then the lowest-index free channels. Groups not
        named are kept whole.

        Raises:
            ValueError: unknown group name, wrong mask length, a fixed channel pruned, or a
                count below the number of fixed channels.
        """
        unknown = set(kept) - set(self._by_name)
        if unknown:
            raise ValueError(f"unknown channel group(s) {sorted(unknown)}; known: {sorted(self._by_name)[:20]}...")
        masks = {}
        for g in self.groups:
            value = kept.get(g.name)
            if value is None:
                masks[g.name] = torch.ones(g.size, dtype=torch.bool)
            elif isinstance(value, torch.Tensor) and value.dim() == 1:
                mask = value.detach().cpu().to(torch.bool)
                if mask.numel() != g.size:
                    raise ValueError(f"group {g.name!r}: mask has {mask.numel()} entries, group has {g.size}")
                lost = g.fixed & ~mask
                if bool(lost.any()):
                    i = int(lost.nonzero()[0])
                    raise ValueError(
                        f"group {g.name!r}: channel {i} is fixed and cannot be pruned ({g.reasons[i]})"
                    )
                masks[g.name] = mask
            else:
                count = int(value)
                n_fixed = int(g.fixed.sum())
                if not n_fixed <= count <= g.size:
                    raise ValueError(
                        f"group {g.name!r}: kept count {count} outside [{n_fixed} fixed, {g.size}]"
                    )
                free = (~g.fixed).nonzero().flatten()[: count - n_fixed]
                mask = g.fixed.clone()
                mask[free] = True
                masks[g.name] = mask
        return masks

    def macs(self, kept: dict[str, Any] | None = None) -> int:
        """Exact MACs (as ``count_macs`` counts them) with ``kept`` channels per group.

        Args:
            kept: ``{group name: int | bool mask [size]}``; missing groups are dense.
        """
        masks = self.keep_masks(kept or {})
        ordered = [masks[g.name] for g in self.groups]
        total = 0
        for scale, factors, divisor in self._terms:
            value = scale
            for f in factors:
                value *= f.fixed + sum(int(ordered[gi][units].sum()) for gi, units in f.parts)
            total += value // divisor
        return total


def build_analysis(graph: ChannelGraph) -> ChannelAnalysis:
    """Turn a finished trace into groups, members and MAC terms."""
    find = graph.find
    by_key: dict[tuple[str, str, int], list] = {}
    for rec in graph.records:
        key = (rec.module, rec.tensor, rec.dim)
        if key in by_key:
            graph.union_lists(by_key[key][0].labels, rec.labels)
            by_key[key].append(rec)
        else:
            by_key[key] = [rec]
    fixed_reason: dict[int, str] = {}
    for e, reason in graph.fixed_reason.items():
        fixed_reason.setdefault(find(e), reason)

    parent: dict[int, int] = {}

    def gfind(r: int) -> int:
        parent.setdefault(r, r)
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    producers = [r for r in graph.records if r.role == "producer"]
    for rec in producers:
        roots = [find(e) for e in rec.labels]
        for r in roots[1:]:
            a, b = gfind(roots[0]), gfind(r)
            if a != b:
                parent[b] = a
    group_of: dict[int, int] = {}
    names: list[str] = []
    unit_roots: list[list[int]] = []
    unit_index: dict[int, tuple[int, int]] = {}
    for rec in producers:
        for e in rec.labels:
            root = find(e)
            gkey = gfind(root)
            if gkey not in group_of:
                group_of[gkey] = len(names)
                names.append(_unique_name(rec.module, rec.tensor, names))
                unit_roots.append([])
            gi = group_of[gkey]
            if root not in unit_index:
                unit_index[root] = (gi, len(unit_roots[gi]))
                unit_roots[gi].append(root)

    members: list[list[Member]] = [[] for _ in names]
    for (module, tensor, dim), recs in by_key.items():
        role = "producer" if any(r.role == "producer" for r in recs) else recs[0].role
        split: dict[int, tuple[list[int], list[int]]] = {}
        for pos, e in enumerate(recs[0].labels):
            hit = unit_index.get(find(e))
            if hit is not None:
                split.setdefault(hit[0], ([], []))
                split[hit[0]][0].append(pos)
                split[hit[0]][1].append(hit[1])
        for gi, (positions, units) in split.items():
            members[gi].append(Member(module, tensor, dim, role, torch.tensor(positions), torch.tensor(units)))

    groups = []
    for gi, name in enumerate(names):
        roots = unit_roots[gi]
        reasons = [fixed_reason.get(r, "") for r in roots]
        fixed = torch.tensor([bool(x) for x in reasons], dtype=torch.bool)
        groups.append(ChannelGroup(name, len(roots), members[gi], fixed, reasons))

    terms = []
    for term in graph.terms:
        factors = []
        for labels in term.factors:
            fixed_count = 0
            parts: dict[int, list[int]] = {}
            for e in labels:
                hit = unit_index.get(find(e))
                if hit is None:
                    fixed_count += 1
                else:
                    parts.setdefault(hit[0], []).append(hit[1])
            factors.append(_Factor(fixed_count, [(gi, torch.tensor(u)) for gi, u in parts.items()]))
        terms.append((term.scale, factors, term.divisor))
    analysis = ChannelAnalysis(groups, terms)
    analysis.rescales = list(graph.rescales)
    return analysis


def _unique_name(module: str, tensor: str, taken: list[str]) -> str:
    module, tensor = layer_of(module, tensor)
    name = module or tensor
    if name not in taken:
        return name
    name = f"{module}.{tensor}" if module else tensor
    k = 1
    candidate = name
    while candidate in taken:
        k += 1
        candidate = f"{name}:{k}"
    return candidate
