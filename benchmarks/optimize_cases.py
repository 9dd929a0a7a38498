"""Cached decoders and runners shared by the optimisation benchmarks (CPU and GPU)."""
from __future__ import annotations

import contextlib
import functools
import math

import torch

from benchmarks.compacted_decoders import DecoderModule, build_decoder
from lwdvc_kernels import ops
from lwdvc_kernels.optimization import optimize

CODECS = ("dcvc", "dcvc_hem", "fvc")
# (label, padded height, padded width): 960x544 frames are padded to a multiple of 64 as the
# codecs themselves do before decoding.
FRAMES = (("448x256", 256, 448), ("960x544", 576, 960))
FRAME_1080P = ("1920x1088", 1088, 1920)  # 1920x1080 padded to a multiple of 64 (the GPU check's frame)
REDUCTION = 0.65


def configure_process() -> None:
    """Process settings of every decoder benchmark (all providers alike): glibc keeps freed
    memory unless LWDVC_BENCH_KEEP_MEMORY=0 (see ``keep_freed_memory``)."""
    import os

    from lwdvc_kernels.optimization import keep_freed_memory

    if os.environ.get("LWDVC_BENCH_KEEP_MEMORY", "1") != "0":
        keep_freed_memory()


@functools.cache
def decoder(codec: str, height: int, width: int, round_to: int = 1, masks: str = "uniform"
            ) -> tuple[DecoderModule, ...]:
    """The decoder's modules at ``REDUCTION``; ``masks``: see ``build_decoder``."""
    return tuple(build_decoder(codec, height, width, REDUCTION, round_to=round_to, masks=masks))


@functools.cache
def optimised(codec: str, height: int, width: int, dtype: torch.dtype, round_to: int = 1,
              device: str = "cpu", masks: str = "uniform") -> tuple[torch.nn.Module, ...]:
    """Optimised compacted modules (traced and verified on the small trace-size inputs)."""
    return tuple(optimize(m.compacted, m.small_inputs, device=device, dtype=dtype)
                 for m in decoder(codec, height, width, round_to, masks))


@functools.cache
def compiled(codec: str, height: int, width: int, round_to: int = 1, device: str = "cpu",
             masks: str = "uniform") -> tuple[torch.nn.Module, ...]:
    """``torch.compile`` (inductor, default mode) of each compacted module on ``device``: compiled
    on its first call, once per autocast dtype."""
    return tuple(torch.compile(m.compacted.to(device)) for m in decoder(codec, height, width, round_to, masks))


def runner(codec: str, height: int, width: int, provider: str, round_to: int = 1, device: str = "cpu",
           masks: str = "uniform", narrow_conv: bool = True):
    """A no-argument callable decoding one frame's worth of decoder modules.

    provider: ``dense-eager-<dt>``, ``compacted-eager-<dt>``, ``compacted-opt-<dt>`` or
    ``compacted-compile-<dt>`` (``torch.compile`` of the compacted modules) with ``<dt>``
    ``fp32``, ``bf16`` or ``fp16`` (eager and compiled bf16 / fp16 run under autocast, the
    standard eager path; the optimised modules compute in that dtype themselves).
    masks: see ``build_decoder``. narrow_conv: False runs the optimised modules' convolutions with
    oneDNN only (``ops.narrow_conv_in_epilogue(False)``).
    """
    kind, mode, dt = provider.split("-")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dt]
    modules = decoder(codec, height, width, round_to, masks)
    inputs = [tuple(t.to(device) for t in m.inputs) for m in modules]
    if mode == "opt":
        nets = optimised(codec, height, width, None if dtype == torch.float32 else dtype, round_to, device, masks)
    elif mode == "compile":
        nets = compiled(codec, height, width, round_to, device, masks)
    else:
        nets = [(m.dense if kind == "dense" else m.compacted).to(device) for m in modules]
    autocast = (lambda: torch.autocast(device, dtype=dtype)) if mode != "opt" and dt != "fp32" else \
        contextlib.nullcontext

    def step():
        with torch.inference_mode(), autocast(), ops.narrow_conv_in_epilogue(narrow_conv):
            outs = [net(*args) for net, args in zip(nets, inputs)]
        if device != "cpu":
            torch.cuda.synchronize()
        return outs

    return step


def macs(codec: str, height: int, width: int, kind: str, round_to: int = 1, masks: str = "uniform") -> int:
    modules = decoder(codec, height, width, round_to, masks)
    return sum(m.dense_macs if kind == "dense" else m.compacted_macs for m in modules)


def snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    """10 log10(power of reference / power of the difference), in float64."""
    a, b = reference.double(), other.double()
    noise = float((a - b).pow(2).mean())
    return math.inf if noise == 0 else 10 * math.log10(float(a.pow(2).mean()) / noise)
