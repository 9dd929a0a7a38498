"""Codecs whose P-frame decoder runs through the inference optimiser (:func:`lwdvc_kernels.optimize`).

``optimize_codec(codec, dtype=torch.bfloat16)`` returns a copy of a (dense or compacted)
:class:`lwdvc.models.VideoCodec` in which every module of ``codec.inter.decoder_modules()``
forwards its calls to its optimised version (fused conv epilogues and GDN, channels_last, optional
bfloat16 compute); everything else (I-frame codec, encoder, entropy models) is unchanged. The
copy codes sequences like the original, so :func:`lwdvc.eval.rd_curve` measures the RD effect
of the optimisation (e.g. of bfloat16) on real video.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

import lwdvc_kernels

__all__ = ["optimize_codec", "route_forward", "DTYPES"]

#: Names accepted on the command line for the optimised decoder's compute dtype.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def optimize_codec(codec, dtype: torch.dtype = torch.float32, example_size: tuple[int, int] = (64, 64),
                   device: str | torch.device = "cpu"):
    """A copy of ``codec`` with an optimised P-frame decoder.

    Args:
        codec: a VideoCodec (``codec.inter`` has ``decoder_modules()`` and
            ``decoder_example_inputs(h, w)``); not modified.
        dtype: compute dtype of the optimised modules (float32 or bfloat16); their outputs keep
            the caller's dtype.
        example_size: padded frame size (multiples of 64) of the example inputs each module is
            traced and verified on (the optimised modules then run at any frame size).
        device: where the optimised modules run.

    Returns:
        The optimised copy (eval mode, no gradients); its ``optimized_decoder`` attribute names the
        compute dtype ("fp32" or "bf16"), which ``.lwdv`` files record (an encoder and its decoder
        must run the same decoder networks to stay in sync).

    Raises:
        TypeError: ``codec.inter`` has no decoder_modules()/decoder_example_inputs().
        lwdvc_kernels.optimization.OptimizationMismatch: an optimised module differs from its source
            beyond the dtype's tolerance.
    """
    inter = getattr(codec, "inter", None)
    if not all(hasattr(inter, attr) for attr in ("decoder_modules", "decoder_example_inputs")):
        raise TypeError(f"optimize_codec needs a codec whose .inter has decoder_modules() and "
                        f"decoder_example_inputs(), got {type(codec).__name__}")
    fast = copy.deepcopy(codec).eval()
    fast.requires_grad_(False)
    examples = fast.inter.decoder_example_inputs(*example_size)
    for name, module in fast.inter.decoder_modules().items():
        route_forward(module, lwdvc_kernels.optimize(module, examples[name], device=device, dtype=dtype))
    fast.optimized_decoder = {value: key for key, value in DTYPES.items()}.get(dtype, str(dtype))
    return fast


def route_forward(module: nn.Module, replacement: nn.Module) -> None:
    """Make calls of ``module`` run ``replacement`` instead, in place.

    The module itself stays where it is, with its other methods and submodules (e.g. the
    encoder-side layers of a decoder module that also serves the encoder); only its ``forward``
    goes to ``replacement``, which is kept as ``module._optimised`` (not a registered submodule,
    so state_dict and parameters are unchanged).
    """
    object.__setattr__(module, "_optimised", replacement)
    object.__setattr__(module, "forward", replacement)
