"""Tensors computed in forward from stored parameters, followed back to the stored tensors.

Learnt-compression layers often compute a layer's weight in forward: GDN/IGDN bound, square and
offset their stored ``gamma``/``beta`` and reshape ``gamma`` to ``[C, C, 1, 1]``;
``torch.nn.utils.parametrize`` computes ``weight`` from ``parametrizations.weight.original*``;
weight normalisation scales ``v`` by ``g / ||v||``. A :class:`Derived` value describes such a
tensor ``D`` (shape ``S_D``) by, for every stored tensor ``P`` it reads:

* an *index probe*: int64 ``S_D`` holding, at every element of ``D``, the flat index of the
  element of ``P`` it was computed from (``-1``: not from ``P``); elementwise ops broadcast it,
  shape and indexing ops and concatenation apply themselves to it, so it maps every dim of ``D``
  back to a dim of ``P``;
* the dims of ``P`` that an op *reduced* over (a norm, a sum): slicing those is not exact;
* the recipe to recompute ``D`` from other values of the stored tensors (``recompute``), used to
  test whether masking a stored tensor makes ``D`` exactly zero (the masked-model semantics of a
  producer).

Weight normalisation (``torch._weight_norm(v, g, dim)``) reduces ``v`` over its other dims; a
:class:`NormRescale` makes slicing those exact by rescaling ``g`` after the slice (the norm of the
kept part over the norm of the whole), since a pruned input channel reads zeros in the masked
model anyway.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["Derived", "NormRescale", "SourceDim", "stored", "follow", "source_dims", "zero_when_masked",
           "FOLLOWED_OPS"]

#: Ops whose outputs keep a one-to-one element map to their inputs (after broadcasting).
ELEMENTWISE = frozenset({
    "add", "sub", "rsub", "mul", "div", "true_divide", "truediv", "rtruediv", "pow", "rpow", "neg", "abs",
    "square", "sqrt", "rsqrt", "exp", "log", "reciprocal", "maximum", "minimum", "max", "min", "clamp",
    "clamp_min", "clamp_max", "clip", "sigmoid", "tanh", "softplus", "relu", "where", "float", "double", "half",
    "bfloat16", "to", "type_as", "contiguous", "clone", "detach", "mul_", "add_", "sub_", "div_", "iadd", "isub",
    "imul", "itruediv", "radd", "rmul", "rdiv", "sign", "expm1", "log1p", "erf", "gt", "lt", "ge", "le", "eq", "ne",
})
#: Ops that only move elements (applied to the index probe itself).
MOVES = frozenset({
    "view", "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose", "movedim", "t",
    "get_T", "getitem", "narrow", "select", "expand", "expand_as", "repeat", "flip", "view_as", "reshape_as",
    "index_select", "split", "chunk", "unbind", "split_with_sizes", "tile",
})
CONCATS = frozenset({"cat", "concat", "concatenate", "stack"})
REDUCTIONS = frozenset({"sum", "mean", "norm", "amax", "amin", "prod", "var", "std", "linalg_vector_norm"})
FOLLOWED_OPS = ELEMENTWISE | MOVES | CONCATS | REDUCTIONS | {"_weight_norm"}


@dataclass
class NormRescale:
    """After slicing ``v`` along dims other than ``dim``, multiply ``g`` by ``||v_kept|| / ||v||``
    (norms over all dims but ``dim``), so that ``g * v / ||v||`` keeps its values."""

    v: str
    g: str
    dim: int


@dataclass
class Derived:
    """A tensor computed from stored tensors (see the module docstring).

    Attributes:
        probes: ``{stored tensor's qualified name: int64 index probe, shaped like the tensor}``.
        reduced: ``{(stored name, dim)}`` reduced over (slicing them changes values).
        rescales: weight-norm repairs that make some reduced dims sliceable.
        recompute: ``recompute(values)`` gives the tensor again, with the stored tensors named in
            ``values`` replaced (others as traced).
        opaque: the name of the first op on the way that the analysis cannot follow, or None.
    """

    probes: dict[str, torch.Tensor]
    recompute: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    reduced: set[tuple[str, int]] = field(default_factory=set)
    rescales: list[NormRescale] = field(default_factory=list)
    opaque: str | None = None


def stored(name: str, t: torch.Tensor) -> Derived:
    """A stored parameter/buffer as the start of a derivation."""
    probe = torch.arange(t.numel(), device=t.device).view(t.shape)
    return Derived({name: probe}, lambda values, name=name, t=t: values.get(name, t))


def _unravel(flat: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Flat indices [n] -> coordinates [n, len(shape)]."""
    coords = []
    for size in reversed(shape):
        coords.append(flat % size)
        flat = torch.div(flat, size, rounding_mode="floor")
    return torch.stack(coords[::-1], 1) if coords else flat.new_zeros(flat.shape[0], 0)


def _differing_dims(a: torch.Tensor, b: torch.Tensor, shape: torch.Size) -> set[int]:
    """Dims of the stored tensor (of ``shape``) along which two probes of equal shape read
    different elements (positions where either is ``-1`` left out)."""
    valid = (a >= 0) & (b >= 0)
    if not bool(valid.any()):
        return set()
    ca, cb = _unravel(a[valid], shape), _unravel(b[valid], shape)
    return {k for k in range(len(shape)) if bool((ca[:, k] != cb[:, k]).any())}


def _varying_dims(probe: torch.Tensor, shape: torch.Size, dim: int) -> set[int]:
    """Dims of the stored tensor (of ``shape``) whose coordinate changes along ``dim`` of the probe."""
    return _differing_dims(probe, probe.narrow(dim, 0, 1).expand_as(probe), shape)


def _tensor_outputs(result) -> list[torch.Tensor]:
    """The tensors an op returned, in order."""
    return [result] if isinstance(result, torch.Tensor) else [t for t in result if isinstance(t, torch.Tensor)]


def _recompute_call(func, args, kwargs, inputs: dict[int, Derived], index: int):
    def again(values, func=func, args=args, kwargs=kwargs, inputs=inputs, index=index):
        def swap(a):
            d = inputs.get(id(a)) if isinstance(a, torch.Tensor) else None
            if d is not None:
                return d.recompute(values)
            if isinstance(a, (list, tuple)):
                return type(a)(swap(x) for x in a)
            return a

        return _tensor_outputs(func(*swap(args), **{k: swap(v) for k, v in kwargs.items()}))[index]

    return again


def _first_tensor(args, kwargs) -> torch.Tensor | None:
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a
    return None


def _reduce_dims(name: str, x: torch.Tensor, args, kwargs) -> list[int]:
    dims = kwargs.get("dim", args[1] if len(args) > 1 and not isinstance(args[1], bool) else None)
    if name in ("norm", "linalg_vector_norm"):
        dims = kwargs.get("dim", args[2] if len(args) > 2 else None)
    if dims is None:
        return list(range(x.dim()))
    dims = dims if isinstance(dims, (list, tuple)) else [dims]
    return [int(d) % x.dim() for d in dims]


def _is_reduction(name: str, args, kwargs) -> bool:
    if name in REDUCTIONS:
        return True
    other = args[1] if len(args) > 1 else kwargs.get("other")
    return name in ("max", "min") and not isinstance(other, torch.Tensor)


class _Step:
    """The probes of one output of one op, and the reduced dims and repairs it adds."""

    def __init__(self, name, func, args, kwargs, out: torch.Tensor, index: int, inputs: dict[int, Derived],
                 stored: dict[str, torch.Tensor]) -> None:
        self.name, self.func, self.args, self.kwargs = name, func, args, kwargs
        self.out, self.index, self.inputs, self.stored = out, index, inputs, stored
        self.probes: dict[str, torch.Tensor] = {}
        self.reduced = set().union(*(d.reduced for d in inputs.values()))
        self.rescales = [r for d in inputs.values() for r in d.rescales]

    def weight_norm(self) -> str | None:
        v, g, dim = self.args[0], self.args[1], int(self.args[2]) % self.args[0].dim()
        dv, dg = self.inputs.get(id(v)), self.inputs.get(id(g))
        if dv is None or dg is None or len(dv.probes) != 1 or len(dg.probes) != 1:
            return "_weight_norm of tensors that are not each one stored tensor"
        (vs, vp), (gs, gp) = next(iter(dv.probes.items())), next(iter(dg.probes.items()))
        self.probes[vs], self.probes[gs] = vp, gp.expand(self.out.shape)
        self.reduced.update((vs, k) for k in range(v.dim()) if k != dim)
        self.rescales.append(NormRescale(vs, gs, dim))
        return None

    def concat(self) -> None:
        tensors = list(self.args[0] if self.args else self.kwargs["tensors"])
        dim = self.kwargs.get("dim", self.args[1] if len(self.args) > 1 else 0)
        names = {src for t in tensors if id(t) in self.inputs for src in self.inputs[id(t)].probes}
        for src in names:
            parts = [self.inputs[id(t)].probes.get(src) if id(t) in self.inputs else None for t in tensors]
            parts = [p if p is not None else torch.full(t.shape, -1, dtype=torch.long, device=t.device)
                     for p, t in zip(parts, tensors)]
            self.probes[src] = self.func(parts, dim)

    def move(self) -> None:
        x = _first_tensor(self.args, self.kwargs)
        dx = self.inputs.get(id(x))
        for src, probe in (dx.probes.items() if dx else ()):
            swapped = tuple(probe if a is x else a for a in self.args)
            kw = {k: (probe if v is x else v) for k, v in self.kwargs.items()}
            self.probes[src] = _tensor_outputs(self.func(*swapped, **kw))[self.index]

    def reduction(self) -> None:
        x = _first_tensor(self.args, self.kwargs)
        dx = self.inputs.get(id(x))
        dims = _reduce_dims(self.name, x, self.args, self.kwargs)
        keep = self.out.dim() == x.dim()
        for src, probe in (dx.probes.items() if dx else ()):
            for d in dims:
                self.reduced.update((src, k) for k in _varying_dims(probe, self.stored[src].shape, d))
            p = probe
            for d in sorted(dims, reverse=True):
                p = p.narrow(d, 0, 1) if keep else p.select(d, 0)
            self.probes[src] = p.reshape(self.out.shape) if p.numel() == self.out.numel() else p

    def elementwise(self) -> None:
        """Every operand's probe broadcast to the output. A constant that is not stored (built
        in forward) and varies along an output dim makes the stored dims there unsliceable."""
        operands = [a for a in list(self.args) + list(self.kwargs.values()) if isinstance(a, torch.Tensor)]
        varying_constants = [j for t in operands if id(t) not in self.inputs
                             for j in range(self.out.dim()) if _broadcast_size(t, self.out, j) > 1]
        for t in operands:
            d = self.inputs.get(id(t))
            for src, probe in (d.probes.items() if d else ()):
                shape = self.stored[src].shape
                wide = probe.expand(self.out.shape) if probe.shape != self.out.shape else probe
                for j in varying_constants:
                    self.reduced.update((src, k) for k in _varying_dims(wide, shape, j))
                if src in self.probes and not torch.equal(self.probes[src], wide):
                    self.reduced.update((src, k) for k in _differing_dims(self.probes[src], wide, shape))
                    continue
                self.probes[src] = wide


def _broadcast_size(t: torch.Tensor, out: torch.Tensor, j: int) -> int:
    """Size of ``t`` along output dim ``j`` once broadcast to ``out`` (1 where it broadcasts)."""
    k = j - (out.dim() - t.dim())
    return t.shape[k] if 0 <= k < t.dim() else 1


def follow(name: str, func, args, kwargs, out, inputs: dict[int, Derived],
           stored: dict[str, torch.Tensor]) -> list[Derived]:
    """The :class:`Derived` of every tensor output of a call on derived/stored tensors only.

    Args:
        name: normalised op name; func/args/kwargs: the call; out: its result.
        inputs: ``{id(tensor): Derived}`` for the call's tensor arguments that are derived.
        stored: ``{qualified name: tensor}`` of the model's stored tensors.
    """
    results = []
    for index, o in enumerate(_tensor_outputs(out)):
        step = _Step(name, func, args, kwargs, o, index, inputs, stored)
        opaque = next((d.opaque for d in inputs.values() if d.opaque), None)
        if opaque is None and name not in FOLLOWED_OPS:
            opaque = name
        if opaque is None:
            if name == "_weight_norm":
                opaque = step.weight_norm()
            elif name in CONCATS:
                step.concat()
            elif name in MOVES:
                step.move()
            elif _is_reduction(name, args, kwargs):
                step.reduction()
            else:
                step.elementwise()
        recompute = _recompute_call(func, args, kwargs, inputs, index)
        results.append(Derived({} if opaque else step.probes, recompute, step.reduced, step.rescales, opaque))
    return results


@dataclass
class SourceDim:
    """One stored tensor dim that a dim of a derived tensor maps onto.

    ``order[i]`` is the position along ``dim`` of the stored tensor that position ``i`` of the
    derived tensor's dim comes from (a permutation)."""

    name: str
    dim: int
    order: list[int]


def source_dims(d: Derived, dim: int, stored: dict[str, torch.Tensor]) -> tuple[list[SourceDim], str | None]:
    """The stored dims that ``dim`` of the derived tensor maps onto one-to-one.

    Returns:
        (sources, problem): ``problem`` names why the dim cannot be followed (None when it can).
    """
    if d.opaque:
        return [], f"it is computed in forward by {d.opaque!r}, which the analysis cannot follow"
    found = []
    for src, probe in d.probes.items():
        shape = stored[src].shape
        varying = _varying_dims(probe, shape, dim)
        if not varying:
            continue  # shared by all positions along ``dim`` (a scalar, a broadcast vector)
        if len(varying) > 1:
            return [], f"its dim {dim} mixes dims {sorted(varying)} of {src!r}"
        k = varying.pop()
        moved = probe.movedim(dim, 0).reshape(probe.shape[dim], -1)
        order = []
        for row in moved:
            row = row[row >= 0]
            coords = set(_unravel(row, shape)[:, k].tolist()) if row.numel() else set()
            if len(coords) != 1:
                return [], f"its dim {dim} does not map one-to-one onto dim {k} of {src!r}"
            order.append(coords.pop())
        if sorted(order) != list(range(shape[k])):
            return [], f"its dim {dim} reads dim {k} of {src!r} in a pattern that is not a permutation"
        found.append(SourceDim(src, k, order))
    return found, None


def zero_when_masked(d: Derived, names: list[str], stored: dict[str, torch.Tensor]) -> bool:
    """True when zeroing the stored tensors ``names`` makes the derived tensor exactly zero (the
    masked model zeroes a producer's stored tensors, and needs the layer's output to be zero)."""
    try:
        again = d.recompute({n: torch.zeros_like(stored[n]) for n in names})
    except (RuntimeError, TypeError, ValueError):
        return False
    return bool((again == 0).all())
