"""DCVC's autoregressive wavefront loop alone (``_decode_autoregressive``), CPU float32, 448x256.

The loop decodes a latent in 3(H-1)+W wavefronts, each a gather of the 12 causal taps, one
matrix product and the entropy parameter net on the wavefront's few positions: a per-step cost
that pruning shrinks less than the MACs (docs/results/optimize.md). Timed for both latents of a
P-frame (motion, then contextual), with the dense decoder modules and with the optimised ones of
floor-or-whole masks (``decode_paths`` variants ``dense`` and ``optimised_floor``), in turns.
Run: ``pytest benchmarks/test_bench_wavefront.py --benchmark-only``.
"""
from __future__ import annotations

import torch

from benchmarks.decode_paths import decode_arguments, decode_models
from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import configure_process

configure_process()

HEIGHT, WIDTH = 256, 448
VARIANTS = ("dense", "optimised_floor")


def _wavefront_step(variant: str):
    model = decode_models("dcvc", HEIGHT, WIDTH)[variant]
    _, mv_z_hat, z_hat, mv_y_symbols, y_symbols = decode_arguments("dcvc", model, HEIGHT, WIDTH)
    with torch.inference_mode():
        params_mv = model.mvpriorDecoder(mv_z_hat)
        params = torch.cat((torch.randn(1, model.channel_M, HEIGHT // 16, WIDTH // 16,
                                        generator=torch.Generator().manual_seed(1)),
                            model.priorDecoder(z_hat)), 1)

    def step():
        with torch.inference_mode():
            mv = model._decode_autoregressive(mv_y_symbols, params_mv, model.auto_regressive_mv,
                                              model.entropy_parameters_mv)
            y = model._decode_autoregressive(y_symbols, params, model.auto_regressive, model.entropy_parameters)
        return mv[0], y[0]

    return step


def test_wavefront_loop(benchmark, record_median):
    steps = {v: _wavefront_step(v) for v in VARIANTS}
    outs = {v: s() for v, s in steps.items()}
    for v in VARIANTS:
        assert outs[v][0].shape[-2:] == (HEIGHT // 16, WIDTH // 16) and torch.isfinite(outs[v][1]).all()
    group = "wavefront loop dcvc 448x256"
    benchmark.group = group
    medians = benchmark.pedantic(interleaved_medians, args=(steps, 7), rounds=1, iterations=1)
    for variant, median in medians.items():
        record_median(benchmark, group, variant, baseline="dense", median=median,
                      wavefronts=2 * (3 * (HEIGHT // 16 - 1) + WIDTH // 16))
