"""Decoder MACs per frame, module by module, measured with ``lwdvc_kernels.count_macs``.

The model is built on the meta device, so full-HD sizes cost no memory. Every module in
``model.decoder_modules()`` runs once on ``model.decoder_example_inputs(height, width)``; the
flow warps (``grid_sample``) are counted from ``model.warp_shapes(height, width)``. The
autoregressive context model of DCVC runs position by position when decoding; it is counted as
one full-frame masked convolution (the same number of MACs).
"""
from __future__ import annotations

import torch

from lwdvc.models.layers import FlowWarp
from lwdvc.models.video_codec import FRAME_SKIP_OF
from lwdvc.models.zoo import build
from lwdvc_kernels import count_macs

__all__ = ["decoder_macs", "frame_total"]

# Modules that run only for some frames and are left out of the per-frame total.
_NOT_IN_P_FRAME_TOTAL = {"dcvc_hem": {"feature_adaptor_I"}}
# A frame-skip variant runs the same modules as its base model.
_NOT_IN_P_FRAME_TOTAL.update({skip: _NOT_IN_P_FRAME_TOTAL[base] for base, skip in FRAME_SKIP_OF.items()})


def decoder_macs(name: str, height: int, width: int, **config) -> dict[str, int]:
    """MACs of every decoder module of model ``name`` for a padded ``height`` x ``width`` frame.

    Returns:
        ``{module name: MACs}`` in decoding order plus ``"flow_warp"`` when the model warps.
    """
    with torch.device("meta"):
        model = build(name, **config)
    examples = model.decoder_example_inputs(height, width)
    result = {module_name: count_macs(module, *examples[module_name])
              for module_name, module in model.decoder_modules().items()}
    warps = model.warp_shapes(height, width) if hasattr(model, "warp_shapes") else []
    if warps:
        warp = FlowWarp()
        result["flow_warp"] = sum(
            count_macs(warp, torch.empty((1, *shape), device="meta"),
                       torch.empty((1, 2, *shape[1:]), device="meta"))
            for shape in warps)
    return result


def frame_total(name: str, per_module: dict[str, int]) -> int:
    """Per-frame total: the sum over modules, without those that run only for some frames."""
    skip = _NOT_IN_P_FRAME_TOTAL.get(name, set())
    return sum(macs for module_name, macs in per_module.items() if module_name not in skip)
