"""Execution tracing for the channel analysis.

Why not ``torch.fx.symbolic_trace``: decoders of learnt codecs branch on tensor shapes (padding
to a multiple of 64, per-resolution paths) and call helper functions on real values, which a
symbolic trace cannot follow. We therefore run the module once on the example inputs under a
:class:`torch.overrides.TorchFunctionMode` and record every torch function call on concrete
tensors, plus forward hooks on *leaf* modules (types in the module-handler registry, e.g. convs,
norms, GDN, PixelShuffle). Inside a leaf module nothing is recorded: its handler describes it.
Every other module is traced through, so custom blocks need no handler as long as their
functional ops are known. Tensors are identified by object identity (kept alive during the
trace); parameters and buffers by identity with their qualified names.

Rules: leaf modules -> :mod:`lwdvc_kernels.compaction.module_rules`; functions and tensor methods
(by name) -> :mod:`lwdvc_kernels.compaction.function_rules`. A call with no channel-carrying input
(constants, shapes, grids built from ``arange``) needs no rule. A call with one and no rule
raises :class:`UnsupportedOpError` naming the op and the module it ran in, as does a call that
hands values computed from the module's inputs to Python or numpy (:data:`VALUE_READS`:
``.numpy()``, ``.tolist()``, ``.item()``, ``float(t)``, ``bool(t)``...), since what comes back
would look like a constant.

The trace leaves the model as it was: it runs in eval mode (a defined mode: BatchNorm uses its
running statistics, dropout is off), without gradients, and :func:`preserved_state` restores
every module's train/eval flag and the value of every buffer the forward pass changed
(BatchNorm statistics, user counters).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from lwdvc_kernels.compaction import derived as derivation
from lwdvc_kernels.compaction.graph import ChannelGraph, Record, UnsupportedOpError, Val
from lwdvc_kernels.compaction.stored_records import DERIVED_OWNER, records_on_stored

__all__ = ["Tracer", "VALUE_READS", "iter_tensors", "func_name", "normalize_inputs", "preserved_state", "module_modes",
           "restore_modes"]


#: Tensor methods that hand a tensor's values to Python or numpy. On a value computed from the
#: module's inputs they raise :class:`UnsupportedOpError`: what comes back (``torch.from_numpy``,
#: ``torch.tensor(...)``, a Python number) would look like a constant to the analysis.
VALUE_READS = frozenset({"numpy", "tolist", "item", "__array__", "__float__", "__int__", "__index__",
                         "__complex__", "__bool__"})


def _masks_only(parametrizations) -> bool:
    """True when every parametrization in the list is a channel mask (``MaskedWeight``)."""
    from lwdvc_kernels.masking import MaskedWeight

    return all(isinstance(p, MaskedWeight) for p in parametrizations)


def module_modes(model: nn.Module) -> dict[str, bool]:
    """``{qualified name: training flag}`` of every submodule of ``model`` (``""``: itself)."""
    return {name: module.training for name, module in model.named_modules(remove_duplicate=False)}


def restore_modes(model: nn.Module, modes: dict[str, bool]) -> None:
    """Set the training flag of every submodule named in ``modes``; a submodule it does not name
    (one that replaced another) takes its parent's."""
    for name, module in model.named_modules(remove_duplicate=False):
        if name in modes:
            module.training = modes[name]
        else:
            module.training = modes.get(name.rpartition(".")[0], model.training)


@contextlib.contextmanager
def preserved_state(*models: nn.Module) -> Iterator[None]:
    """Run the block with ``models`` in eval mode, then restore every submodule's train/eval flag
    and the values of all buffers the block changed (in place, so tensor identities stay)."""
    saved = []
    for model in models:
        buffers = [(t, t.detach().clone()) for t in model.buffers()]
        saved.append((model, module_modes(model), buffers))
        model.eval()
    try:
        yield
    finally:
        with torch.no_grad():
            for model, modes, buffers in saved:
                restore_modes(model, modes)
                for t, value in buffers:
                    if t.shape == value.shape and not torch.equal(t, value):
                        t.copy_(value)


def iter_tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Tensors inside nested tuples/lists/dicts (in order)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            yield from iter_tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from iter_tensors(item)


def func_name(func: Any) -> str:
    """Normalised name of a torch function / tensor method (``__iadd__`` -> ``iadd``)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        return "get_" + str(getattr(owner, "__name__", "attr"))
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    return name


def normalize_inputs(example_inputs: Any) -> tuple[tuple, dict]:
    """``x`` / ``(x, y)`` / ``{"x": x}`` -> (args, kwargs)."""
    if isinstance(example_inputs, dict):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


class Tracer(TorchFunctionMode):
    """Runs a module once and feeds every op to the channel rules."""

    def __init__(self, model: nn.Module, module_rules, function_rules) -> None:
        super().__init__()
        self.model = model
        self.g = ChannelGraph()
        self.module_rules = module_rules
        self.function_rules = function_rules
        self.vals: dict[int, Val] = {}
        self._alive: list[torch.Tensor] = []
        self.params: dict[int, str] = {}
        #: ``{qualified name: tensor}`` of every parameter and buffer
        self.stored: dict[str, torch.Tensor] = {}
        #: weights of functional ops computed in forward, by the key their records carry
        self.computed: dict[str, derivation.Derived] = {}
        self._stored_derived: dict[int, derivation.Derived] = {}
        self.g.resolver = self._resolve
        self.depth = 0
        self.busy = False
        self.stack: list[str] = []
        self.counter = 0
        self.leaf_calls: list[str] = []

    # -- values ---------------------------------------------------------------------------
    def val(self, t: Any) -> Val | None:
        """Channel info of a tensor; parameters get ``Val(param=name)``; constants None."""
        if not isinstance(t, torch.Tensor):
            return None
        v = self.vals.get(id(t))
        if v is not None:
            return v
        name = self.params.get(id(t))
        if name is not None:
            return Val(param=name, const=True)
        return None

    def derived(self, t: Any) -> derivation.Derived | None:
        """How a tensor is computed from stored tensors (a stored tensor: itself), or None."""
        v = self.val(t)
        if v is None:
            return None
        if v.derived is not None:
            return v.derived
        if v.param is not None and v.param in self.stored and self.stored[v.param] is t:
            d = self._stored_derived.get(id(t))
            if d is None:
                d = self._stored_derived[id(t)] = derivation.stored(v.param, t)
            return d
        return None

    def computed_key(self, t: torch.Tensor) -> tuple[str, str] | None:
        """(owner, attr) under which records of the computed tensor ``t`` are kept, or None."""
        d = self.derived(t)
        if d is None or (self.val(t).param is not None):
            return None
        key = f"#{len(self.computed)}"
        self.computed[key] = d
        return DERIVED_OWNER, key

    def _resolve(self, rec: Record, allow_unmaskable: bool) -> tuple[list[Record], bool]:
        d = self.computed.get(rec.tensor) if rec.module == DERIVED_OWNER else self._computed_attr(rec)
        if d is None:
            return [rec], True
        return records_on_stored(self.g, d, rec, self.stored, allow_unmaskable)

    def _computed_attr(self, rec: Record) -> derivation.Derived | None:
        """A layer attribute that is computed in forward (a parametrization other than a mask,
        a weight set by a hook) rather than stored."""
        try:
            owner = self.model.get_submodule(rec.module) if rec.module else self.model
        except AttributeError:
            return None
        if rec.tensor in owner._parameters or rec.tensor in owner._buffers:
            return None
        t = getattr(owner, rec.tensor, None)
        v = self.val(t)
        return v.derived if v is not None and v.param is None else None

    def set(self, t: Any, val: Val) -> None:
        if isinstance(t, torch.Tensor):
            self.vals[id(t)] = val
            self._alive.append(t)

    def labeled(self, t: Any) -> bool:
        v = self.val(t)
        return v is not None and v.cdim is not None

    def where(self) -> str:
        return self.stack[-1] if self.stack else ""

    def set_untracked(self, out: Any, const: bool) -> None:
        for t in iter_tensors(out):
            self.set(t, Val(const=const))

    # -- tracing --------------------------------------------------------------------------
    def run(self, example_inputs: Any) -> Any:
        args, kwargs = normalize_inputs(example_inputs)
        handles = []
        for qualname, module in self.model.named_modules():
            handles.append(module.register_forward_pre_hook(self._pre_hook(qualname), with_kwargs=True))
            handles.append(module.register_forward_hook(self._post_hook(qualname), with_kwargs=True))
        try:
            with torch.no_grad(), preserved_state(self.model), parametrize.cached():
                computed_in_trace = []
                for qualname, module in self.model.named_modules(remove_duplicate=False):
                    for name, t in list(module.named_parameters(recurse=False)) + list(
                        module.named_buffers(recurse=False)
                    ):
                        self.params.setdefault(id(t), f"{qualname}.{name}" if qualname else name)
                        self.stored.setdefault(f"{qualname}.{name}" if qualname else name, t)
                    for name in getattr(module, "parametrizations", {}):
                        if not _masks_only(module.parametrizations[name]):
                            computed_in_trace.append((module, name))
                            continue
                        t = getattr(module, name)
                        self._alive.append(t)
                        self.params[id(t)] = f"{qualname}.{name}" if qualname else name
                for t in iter_tensors((args, kwargs)):
                    self.set(t, self.g.fresh_input(t, "module input"))
                with self:
                    for module, name in computed_in_trace:  # computed once here, then cached
                        self._alive.append(getattr(module, name))
                    out = self.model(*args, **kwargs)
        finally:
            for h in handles:
                h.remove()
        self.g.node = "<output>"
        for t in iter_tensors(out):
            v = self.val(t)
            if v is not None and v.cdim is not None:
                self.g.fix(v.labels, "module output")
        return out

    def _leaf_rule(self, module: nn.Module):
        for cls in type(module).__mro__:
            rule = self.module_rules.get(cls)
            if rule is not None:
                return rule if type(module).forward is cls.forward else None
        return None

    def _pre_hook(self, qualname: str):
        def hook(module, args, kwargs):
            if self.busy:
                return None
            self.stack.append(qualname)
            if self._leaf_rule(module) is not None:
                self.depth += 1
            return None

        return hook

    def _post_hook(self, qualname: str):
        def hook(module, args, kwargs, output):
            if self.busy:
                return None
            self.stack.pop()
            rule = self._leaf_rule(module)
            if rule is None:
                return None
            self.depth -= 1
            if self.depth == 0:
                self.busy = True
                try:
                    self.g.node = qualname or "<root>"
                    self.leaf_calls.append(qualname)
                    rule.trace(self, module, qualname, args, kwargs, output)
                finally:
                    self.busy = False
            return None

        return hook

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not (self.depth > 0 or self.busy) and getattr(func, "__name__", None) in VALUE_READS:
            self._refuse_value_read(func, args, kwargs)
        out = func(*args, **kwargs)
        if self.depth > 0 or self.busy or next(iter_tensors(out), None) is None:
            return out
        self.busy = True
        try:
            self._on_function(func, args, kwargs, out)
        finally:
            self.busy = False
        return out

    def _follow_stored(self, name, func, args, kwargs, out, inputs) -> None:
        """Outputs of a call on stored / computed-from-stored tensors remember how (see
        :mod:`lwdvc_kernels.compaction.derived`)."""
        known = {id(t): d for t in inputs if (d := self.derived(t)) is not None}
        if not known:
            return
        try:
            results = derivation.follow(name, func, args, kwargs, out, known, self.stored)
        except (RuntimeError, TypeError, ValueError, IndexError) as error:
            results = [derivation.Derived({}, lambda values: None, opaque=f"{name} ({error})")
                       for _ in iter_tensors(out)]
        for t, d in zip(iter_tensors(out), results):
            if id(t) not in self.params:  # an op that returned a stored tensor itself (``w.to(w.dtype)``)
                self.set(t, Val(const=True, derived=d))

    def _refuse_value_read(self, func, args, kwargs) -> None:
        """Values that leave torch (``.numpy()``, ``.item()``...) and come back would be traced
        as constants, so channels they depend on could be pruned unseen: refuse them."""
        for t in iter_tensors((args, kwargs)):
            v = self.val(t)
            if v is not None and (v.cdim is not None or not v.const):
                where = self.where() or "<root>"
                raise UnsupportedOpError(
                    f"channel analysis cannot follow {func.__name__!r} ({func!r}) in module {where!r}: it "
                    "turns values computed from the module's inputs into non-tensors, which the analysis "
                    "cannot see (keep the computation in torch ops)")

    def _on_function(self, func, args, kwargs, out) -> None:
        name = func_name(func)
        self.counter += 1
        where = self.where() or "<root>"
        self.g.node = f"{where}:{name}#{self.counter}"
        inputs = list(iter_tensors((args, kwargs)))
        if not any(self.labeled(t) for t in inputs):
            vals = [self.val(t) for t in inputs]
            const = all(v is not None and v.const for v in vals)
            self.set_untracked(out, const)
            if const:
                self._follow_stored(name, func, args, kwargs, out, inputs)
            self.function_rules.constant_call(self, name, func, args, kwargs, out)
            return
        rule = self.function_rules.RULES.get(name)
        if rule is None:
            raise UnsupportedOpError(
                f"channel analysis has no rule for op {name!r} ({func!r}) at node "
                f"{self.g.node!r} in module {where!r}; it reads channel-carrying tensors (describe the "
                "module with a handler: handlers={ItsType: handler}, docs/ADDING_A_LAYER.md)"
            )
        rule(self, func, args, kwargs, out)
