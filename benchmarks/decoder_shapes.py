"""Weight shapes of a DCVC-sized decoder (about 10 M conv parameters), for kernel benchmarks.

Each entry is (shape, channel dim): conv weights [Cout, Cin, k, k] are masked along dim 0,
transposed-conv weights [Cin, Cout, k, k] along dim 1.
"""
from __future__ import annotations

import torch


def dcvc_sized_decoder_weights() -> list[tuple[tuple[int, ...], int]]:
    shapes: list[tuple[tuple[int, ...], int]] = []
    # Hyper-prior decoders and entropy parameters (1x1 / 3x3 / transposed convs on latents).
    shapes += [((64, 64, 5, 5), 1), ((64, 96, 5, 5), 1), ((96, 144, 3, 3), 0)]
    shapes += [((640, 384, 1, 1), 0), ((512, 640, 1, 1), 0), ((384, 512, 1, 1), 0)]
    shapes += [((256, 128, 1, 1), 0), ((256, 256, 1, 1), 0), ((128, 256, 1, 1), 0)]
    # Motion decoder: transposed convs 128 -> 128 plus refinement convs.
    shapes += [((128, 128, 3, 3), 1)] * 3 + [((128, 2, 3, 3), 1)]
    shapes += [((64, 5, 3, 3), 0)] + [((64, 64, 3, 3), 0)] * 8 + [((2, 64, 3, 3), 0)]
    # Feature extraction, context refinement, temporal prior encoder.
    shapes += [((64, 3, 3, 3), 0)] + [((64, 64, 3, 3), 0)] * 8
    shapes += [((64, 64, 5, 5), 0), ((64, 64, 5, 5), 0), ((64, 64, 5, 5), 0), ((96, 64, 5, 5), 0)]
    # Contextual decoder: transposed convs 96 -> 64 channels, residual blocks, reconstruction.
    shapes += [((96, 64, 3, 3), 1), ((64, 64, 3, 3), 1), ((64, 64, 3, 3), 1), ((64, 64, 3, 3), 1)]
    shapes += [((64, 128, 3, 3), 0)] + [((64, 64, 3, 3), 0)] * 12 + [((3, 64, 3, 3), 0)]
    # Large 5x5 entropy-model convs that dominate the parameter count.
    shapes += [((384, 384, 5, 5), 0), ((256, 256, 5, 5), 0), ((192, 192, 5, 5), 1)]
    return shapes


def make_weights(dtype: torch.dtype = torch.float32, seed: int = 0):
    """Random weights, masks (about 40% pruned), output gradients and dims of the decoder."""
    g = torch.Generator().manual_seed(seed)
    weights, masks, grads, dims = [], [], [], []
    for shape, dim in dcvc_sized_decoder_weights():
        weights.append(torch.randn(shape, generator=g).to(dtype).requires_grad_(True))
        masks.append((torch.rand(shape[dim], generator=g) < 0.6).to(dtype))
        grads.append(torch.randn(shape, generator=g).to(dtype))
        dims.append(dim)
    return weights, masks, grads, dims
