"""Coder tables of the models' factorized priors (computed once per model, in float64)."""
from __future__ import annotations

import copy

from lwdvc.bitstream.symbols import FactorizedTable
from lwdvc.models.entropy import BitEstimator, EntropyBottleneck

__all__ = ["bottleneck_table", "factorized_table", "hyper_shape"]


def factorized_table(estimator: BitEstimator, radius: int = 63) -> FactorizedTable:
    """Per-channel tables of a :class:`BitEstimator` CDF at the integers [-radius, radius]."""
    exact = copy.deepcopy(estimator).double()
    return FactorizedTable.from_likelihood(lambda v: exact(v + 0.5) - exact(v - 0.5),
                                           estimator.channels, radius)


def bottleneck_table(bottleneck: EntropyBottleneck, radius: int = 63) -> FactorizedTable:
    """Per-channel tables of an :class:`EntropyBottleneck` at ``median + k`` for k in
    [-radius, radius] (its symbols are ``round(z - median)``; its likelihood computes in float32,
    elementwise and in matrix products over 3 filters, the same on every call)."""
    medians = bottleneck.medians().detach().double()
    return FactorizedTable.from_likelihood(lambda v: bottleneck.likelihood(v + medians), bottleneck.channels, radius)


def hyper_shape(table: FactorizedTable, size) -> tuple[int, int, int, int]:
    """Shape [1, C, H/64, W/64] of the hyper latent coded with ``table`` for a padded frame of
    ``size`` (H, W) (the hyper latents of all the codecs sit at 1/64 of the frame)."""
    height, width = size
    return 1, table.channels, height // 64, width // 64
