"""Which modules are pruned, with which example inputs, and the checks done before training."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

import lwdvc_kernels
from lwdvc.errors import ConfigError

__all__ = ["PruneConfigError", "resolve_modules", "analyse_modules", "check_target"]


class PruneConfigError(ConfigError):
    """A pruning configuration that cannot work (raised before training starts)."""


def check_target(target: Any) -> float:
    """The MAC-reduction target as a float in (0, 1)."""
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise PruneConfigError(f"target_mac_reduction must be a number in (0, 1), got {target!r}")
    target = float(target)
    if not 0.0 < target < 1.0:
        raise PruneConfigError(f"target_mac_reduction must be in (0, 1) (a fraction of the dense "
                               f"decoder MACs), got {target}")
    return target


def resolve_modules(model: nn.Module, modules: Mapping[str, nn.Module] | Sequence[str] | None
                    ) -> dict[str, tuple[str, nn.Module]]:
    """``{name: (qualified name inside model, module)}`` for the modules to prune.

    Args:
        model: the model being fine-tuned.
        modules: ``{name: submodule}`` (e.g. ``model.decoder_modules()``), a list of qualified
            submodule names, or None for ``model.decoder_modules()``.

    Raises:
        PruneConfigError: empty scope, a module that is not part of ``model``, or a module listed
            twice.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Pruner expects an nn.Module, got {type(model).__name__}")
    if modules is None:
        if not hasattr(model, "decoder_modules"):
            raise PruneConfigError(f"{type(model).__name__} has no decoder_modules(); pass modules=")
        modules = model.decoder_modules()
    if isinstance(modules, Mapping):
        items = list(modules.items())
    elif isinstance(modules, Sequence) and not isinstance(modules, str):
        items = []
        for name in modules:
            try:
                items.append((name, model.get_submodule(name)))
            except AttributeError as err:
                raise PruneConfigError(f"no submodule {name!r} in {type(model).__name__}") from err
    else:
        raise TypeError(f"modules must be a dict of modules or a list of names, got {type(modules).__name__}")
    if not items:
        raise PruneConfigError("the list of modules to prune is empty")
    qualname = {id(m): n for n, m in model.named_modules()}
    resolved: dict[str, tuple[str, nn.Module]] = {}
    seen: set[int] = set()
    for name, module in items:
        if not isinstance(module, nn.Module):
            raise TypeError(f"modules[{name!r}] is a {type(module).__name__}, not an nn.Module")
        if id(module) not in qualname:
            raise PruneConfigError(f"module {name!r} ({type(module).__name__}) is not a submodule of "
                                   f"{type(model).__name__}")
        if id(module) in seen:
            raise PruneConfigError(f"module {name!r} is listed twice")
        seen.add(id(module))
        resolved[str(name)] = (qualname[id(module)], module)
    return resolved


def analyse_modules(resolved: dict[str, tuple[str, nn.Module]], example_inputs: Mapping[str, Any]
                    ) -> dict[str, Any]:
    """Run :func:`lwdvc_kernels.channel_groups` on every module (in eval mode, no gradients).

    Raises:
        PruneConfigError: a module without example inputs.
    """
    if not isinstance(example_inputs, Mapping):
        raise TypeError(f"example_inputs must be a dict {{module name: inputs}}, "
                        f"got {type(example_inputs).__name__}")
    missing = [n for n in resolved if n not in example_inputs]
    if missing:
        raise PruneConfigError(f"no example inputs for module(s) {missing}")
    analyses = {}
    for name, (_, module) in resolved.items():
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                analyses[name] = lwdvc_kernels.channel_groups(module, example_inputs[name])
        finally:
            module.train(was_training)
    return analyses
