"""Whole P-frame decode paths (``model.decode``) with dense, compacted or optimised decoder modules.

The per-module benchmarks feed every decoder module NCHW example inputs; a real decoder hands
each module the previous module's output (channels-last once compacted or optimised). Here the
codec's own ``decode`` runs on seeded random latents (integers, as entropy decoding yields) and
a random reference frame, with the decoder modules of the cached benchmark decoders
(``optimize_cases.decoder`` / ``optimised``) swapped in.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch

from benchmarks.optimize_cases import decoder, optimised
from lwdvc.eval.optimized import route_forward


def _latent(gen: torch.Generator, channels: int, height: int, width: int) -> torch.Tensor:
    return (torch.randn(1, channels, height, width, generator=gen) * 2).round()


def decode_arguments(codec: str, model: torch.nn.Module, height: int, width: int, seed: int = 0) -> tuple:
    """Positional arguments of ``model.decode`` for a padded ``height`` x ``width`` frame."""
    gen = torch.Generator().manual_seed(seed)
    ref = torch.rand(1, 3, height, width, generator=gen)
    h16, w16, h64, w64 = height // 16, width // 16, height // 64, width // 64
    if codec == "dcvc":
        return (ref, _latent(gen, model.channel_N, h64, w64), _latent(gen, model.channel_N, h64, w64),
                _latent(gen, model.channel_mv, h16, w16), _latent(gen, model.channel_M, h16, w16))
    if codec == "dcvc_hem":
        mv_half, m_half = model.channel_mv // 2, model.channel_M // 2
        return ({"ref_frame": ref}, _latent(gen, model.channel_N, h64, w64), _latent(gen, model.channel_N, h64, w64),
                [_latent(gen, mv_half, h16, w16) for _ in range(2)], [_latent(gen, m_half, h16, w16) for _ in range(2)])
    if codec == "fvc":
        ch = model.channel_offset
        return (ref, _latent(gen, ch, h16, w16), _latent(gen, ch, h16, w16), _latent(gen, ch, h64, w64),
                _latent(gen, ch, h64, w64))
    raise ValueError(f"no decode path for codec {codec!r}")


def _with_modules(model: torch.nn.Module, modules: dict[str, torch.nn.Module]) -> torch.nn.Module:
    out = copy.deepcopy(model)
    for name, module in modules.items():
        parent, _, leaf = name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, leaf, module)
    return out


def _optimised_codec(dense: torch.nn.Module, codec: str, height: int, width: int, round_to: int,
                     masks: str = "uniform") -> torch.nn.Module:
    """A copy of ``dense`` whose decoder modules route to the optimised compacted ones."""
    modules = decoder(codec, height, width, round_to, masks)
    fast = _with_modules(dense, {m.name: copy.deepcopy(m.compacted) for m in modules})
    for m, opt in zip(modules, optimised(codec, height, width, None, round_to, "cpu", masks)):
        route_forward(fast.get_submodule(m.name), opt)
    return fast


# Variants: the dense codec, its compacted modules (eager), the optimised ones, the optimised
# ones of the round_to=16 masks (same MAC reduction, channel counts multiples of 16), and the
# optimised ones of floor-or-whole masks (the shape trained masks have; see build_decoder).
VARIANTS = ("dense", "compacted", "optimised", "optimised_r16", "optimised_floor")
#: ``{variant: (round_to, masks)}`` of the decoder the variant's MACs are counted on.
MASKS = {"dense": (1, "uniform"), "compacted": (1, "uniform"), "optimised": (1, "uniform"),
         "optimised_r16": (16, "uniform"), "optimised_floor": (1, "floor")}


@functools.cache
def decode_models(codec: str, height: int, width: int) -> dict[str, torch.nn.Module]:
    """``{variant: codec}`` for :data:`VARIANTS`, sharing the benchmark decoders' weights."""
    from lwdvc.models import build

    torch.manual_seed(0)  # the seed build_decoder uses: the same dense weights
    dense = build(codec).eval()
    compacted = _with_modules(dense, {m.name: m.compacted for m in decoder(codec, height, width)})
    return {"dense": dense, "compacted": compacted,
            "optimised": _optimised_codec(dense, codec, height, width, 1),
            "optimised_r16": _optimised_codec(dense, codec, height, width, 16),
            "optimised_floor": _optimised_codec(dense, codec, height, width, 1, "floor")}


def decode_step(codec: str, height: int, width: int, variant: str) -> Callable[[], torch.Tensor]:
    """A no-argument callable decoding one P-frame; returns the reconstruction before clamping."""
    model = decode_models(codec, height, width)[variant]
    args = decode_arguments(codec, model, height, width)

    def step() -> torch.Tensor:
        with torch.inference_mode():
            return model.decode(*args)["recon_image_preclamp"]

    return step
