"""Channel bookkeeping of a trace: channel elements, their coupling and what they touch.

Every channel of every traced feature map carries an *element* id. A layer that creates new
channels (conv, linear, deformable conv) allocates fresh elements; channel-wise ops pass the
ids through; ops that force two channels to be kept or removed together (a residual add, a
PixelShuffle folding ``r*r`` channels into one, the same weight read twice) join them in a
union-find. After the trace, each union-find class is one *unit*: the smallest set of channels
that can be removed.

Alongside the ids each feature-map channel carries a ``zero`` flag: True when the channel is
exactly zero whenever its unit is pruned (all producers of the unit are masked). A unit may only
be removed when every channel of it that reaches a channel-mixing consumer (conv input, GDN
norm, channel reduction) is zero there; otherwise the unit is marked *fixed* (kept), with the
reason recorded. Fixing is always safe: a kept channel computes the same in both models.

A value that carries no channel ids (``cdim is None``) is *untracked*: constants, parameters
and anything whose channel layout the rules do not follow (its channels were fixed before).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Val", "Record", "MacTerm", "ChannelGraph", "UnsupportedOpError"]


class UnsupportedOpError(NotImplementedError):
    """An op reached the channel analysis that no rule describes (never guessed).

    A ``NotImplementedError`` (a ``RuntimeError``), not a ``TypeError``: Python turns a
    ``TypeError`` raised inside an operator (``a @ b``, ``y > 0``) into ``NotImplemented`` and
    then reports "unsupported operand type(s)", losing the op's name."""


@dataclass
class Val:
    """What the analysis knows about one traced tensor.

    Attributes:
        cdim: index of the channel dim, or None for an untracked tensor.
        labels: element id of each channel (length ``shape[cdim]``).
        zero: per channel, True when it is exactly zero whenever its unit is pruned.
        param: qualified name when the tensor is a parameter/buffer of the traced model.
        const: True when the value does not depend on the module's inputs.
        derived: for a value computed from stored tensors only, how
            (:class:`lwdvc_kernels.compaction.derived.Derived`), else None.
    """

    cdim: int | None = None
    labels: list[int] = field(default_factory=list)
    zero: list[bool] = field(default_factory=list)
    param: str | None = None
    const: bool = False
    derived: Any = None


@dataclass
class Record:
    """One dim of one model tensor whose positions are channel elements.

    ``role`` is "producer" (masked by the group mask, e.g. conv weight dim 0 and bias),
    "consumer" (sliced, never masked, e.g. conv weight in-dim) or "passive" (sliced, never
    masked, e.g. GDN beta/gamma, BatchNorm running statistics).
    """

    module: str
    tensor: str
    dim: int
    role: str
    labels: list[int]
    node: str


@dataclass
class MacTerm:
    """``scale * prod(kept(labels) for labels in factors) // divisor`` MACs of one op."""

    scale: int
    factors: list[list[int]]
    divisor: int
    node: str


class ChannelGraph:
    """Union-find over channel elements plus the records and MAC terms of a trace."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.fixed_reason: dict[int, str] = {}
        self.records: list[Record] = []
        self.terms: list[MacTerm] = []
        self.node = "<input>"
        #: weight-norm repairs of sliced stored tensors (``derived.NormRescale``)
        self.rescales: list[Any] = []
        #: ``resolver(record, allow_unmaskable) -> (records, maskable)`` maps a record of a tensor
        #: computed in forward onto the stored tensors it comes from (set by the tracer)
        self.resolver: Callable[[Record, bool], tuple[list[Record], bool]] | None = None

    # -- elements -------------------------------------------------------------------------
    def new(self, count: int, fixed_reason: str | None = None) -> list[int]:
        """Allocate ``count`` fresh elements (fixed ones when a reason is given)."""
        start = len(self.parent)
        ids = list(range(start, start + count))
        self.parent.extend(ids)
        if fixed_reason is not None:
            for i in ids:
                self.fixed_reason[i] = fixed_reason
        return ids

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if ra < rb:
                ra, rb = rb, ra
            self.parent[ra] = rb

    def union_lists(self, a: list[int], b: list[int]) -> None:
        if len(a) != len(b):
            raise AssertionError(f"{self.node}: coupling {len(a)} with {len(b)} channels")
        for x, y in zip(a, b):
            self.union(x, y)

    def fix(self, labels: list[int], reason: str) -> None:
        """Mark the units of ``labels`` unprunable."""
        for e in labels:
            self.fixed_reason.setdefault(e, f"{self.node}: {reason}")

    def require_zero(self, labels: list[int], zero: list[bool], use: str) -> None:
        """A channel-mixing use: channels that are not zero when pruned fix their unit."""
        for e, z in zip(labels, zero):
            if not z:
                self.fixed_reason.setdefault(
                    e, f"{self.node}: {use} reads a channel that is not zero when pruned"
                )

    # -- values ---------------------------------------------------------------------------
    def fresh_input(self, t: torch.Tensor, reason: str) -> Val:
        """A module input (or an untracked map used as features): fixed channels on dim 1."""
        if t.dim() < 2:
            return Val(const=False)
        return Val(1, self.new(t.shape[1], reason), [False] * t.shape[1])

    def along(self, val: Val | None, t: torch.Tensor, dim: int) -> tuple[list[int], list[bool]]:
        """Labels and zero flags of ``t`` along ``dim``; fixed fresh ones if not tracked there."""
        dim = dim % t.dim()
        if val is not None and val.cdim == dim:
            return val.labels, val.zero
        if val is not None and val.cdim is not None:
            self.fix(val.labels, f"channel dim {val.cdim} used as dim {dim}")
        size = t.shape[dim]
        return self.new(size, f"{self.node}: untracked channels"), [False] * size

    def record(self, module: str, tensor: str, dim: int, role: str, labels: list[int],
               allow_unmaskable: bool = False) -> bool:
        """Record that positions of ``module.tensor`` along ``dim`` are the channels ``labels``.

        A tensor computed in forward is recorded on the stored tensors it comes from. Returns
        whether a producer is exactly zero when its group's mask zeroes its stored tensors; a
        producer that is not fixes its channels unless ``allow_unmaskable`` (the caller then
        clears the channels' ``zero`` flags itself)."""
        rec = Record(module, tensor, dim, role, list(labels), self.node)
        if self.resolver is None:
            self.records.append(rec)
            return True
        records, maskable = self.resolver(rec, allow_unmaskable)
        self.records.extend(records)
        return maskable

    def term(self, scale: int, factors: list[list[int]], divisor: int = 1) -> None:
        self.terms.append(MacTerm(int(scale), [list(f) for f in factors], int(divisor), self.node))
