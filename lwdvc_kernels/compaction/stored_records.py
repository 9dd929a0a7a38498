"""Records of tensors computed in forward, moved onto the stored tensors they come from.

A layer rule records "positions of ``module.tensor`` along ``dim`` are these channels". When
that tensor is computed in forward (see :mod:`lwdvc_kernels.compaction.derived`), the record is
replaced by one record per stored tensor that the dim maps onto, with the positions permuted to
the stored order. A *producer* must be exactly zero when its group's mask zeroes the stored
tensors: the stored tensors whose zeroing makes the computed tensor zero become producers (e.g.
``g`` of a weight-normalised weight), the others passive; when none does (GDN's bounded
``gamma``), the caller learns that the layer's pruned outputs are not zero.

Dims that cannot be followed exactly are handled without guessing: a dim reduced over (a norm,
a sum) fixes its channels unless a weight-norm repair covers it, and an op the analysis cannot
follow raises :class:`UnsupportedOpError` naming it.
"""
from __future__ import annotations

import torch

from lwdvc_kernels.compaction.derived import Derived, source_dims, zero_when_masked
from lwdvc_kernels.compaction.graph import ChannelGraph, Record, UnsupportedOpError
from lwdvc_kernels.compaction.layer_rules import split_param

__all__ = ["records_on_stored", "DERIVED_OWNER", "layer_of"]

#: Owner name of records of functional-op weights computed in forward (``F.conv2d(x, w(p))``).
DERIVED_OWNER = "<computed>"


def layer_of(module: str, tensor: str) -> tuple[str, str]:
    """The layer and attribute a stored tensor belongs to: ``('conv.parametrizations.weight',
    'original0')`` -> ``('conv', 'weight')``; other names unchanged."""
    parts = module.split(".")
    if "parametrizations" in parts:
        i = len(parts) - 1 - parts[::-1].index("parametrizations")
        if i + 1 < len(parts):
            return ".".join(parts[:i]), parts[i + 1]
    return module, tensor


def records_on_stored(g: ChannelGraph, d: Derived, rec: Record, stored: dict[str, torch.Tensor],
                      allow_unmaskable: bool) -> tuple[list[Record], bool]:
    """Map ``rec`` (of a tensor computed as ``d`` describes) onto stored tensors.

    Args:
        g: the trace's graph (fixes channels, collects weight-norm repairs).
        d: how the recorded tensor is computed.
        rec: the layer rule's record.
        stored: ``{qualified name: tensor}`` of the model's parameters and buffers.
        allow_unmaskable: see :meth:`ChannelGraph.record`.

    Returns:
        (records, maskable).
    """
    where = rec.tensor if rec.module == DERIVED_OWNER else f"{rec.module}.{rec.tensor}"
    sources, problem = source_dims(d, rec.dim, stored)
    if problem is not None:
        raise UnsupportedOpError(f"{g.node}: the {rec.role} tensor {where} (dim {rec.dim}) {problem}")
    if not sources:
        g.fix(rec.labels, f"{where} is computed in forward and does not vary along dim {rec.dim}")
        return [], False
    for s in sources:
        if (s.name, s.dim) not in d.reduced:
            continue
        repair = next((r for r in d.rescales if r.v == s.name and r.dim != s.dim), None)
        if repair is None:
            g.fix(rec.labels, f"{where} is computed in a way that mixes dim {s.dim} of {s.name} (a reduction "
                              "over it, or a constant built in forward that varies along it)")
            return [], False
        if repair not in g.rescales:
            g.rescales.append(repair)
    roles = {s.name: rec.role for s in sources}
    maskable = True
    if rec.role == "producer":
        names = [s.name for s in sources]
        chosen = next(([n] for n in names if zero_when_masked(d, [n], stored)), None)
        if chosen is None and len(names) > 1 and zero_when_masked(d, names, stored):
            chosen = names
        if chosen is None:
            if not allow_unmaskable:
                g.fix(rec.labels, f"{where} is computed in forward and is not zero when its stored tensors are masked")
                return [], False
            maskable, chosen = False, []
        roles = {n: ("producer" if n in chosen else "passive") for n in names}
    records = []
    for s in sources:
        labels = [0] * len(s.order)
        for i, position in enumerate(s.order):
            labels[position] = rec.labels[i]
        owner, attr = split_param(s.name)
        records.append(Record(owner, attr, s.dim, roles[s.name], labels, rec.node))
    return records, maskable
