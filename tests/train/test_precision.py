"""bfloat16 training: autocast around the forward pass, likelihoods and losses in float32."""
from __future__ import annotations

import pytest
import torch

from lwdvc.errors import ConfigError
from lwdvc.models.entropy import (
    BitEstimator,
    EntropyBottleneck,
    factorized_likelihood,
    gaussian_conditional_likelihood,
    gaussian_likelihood,
    laplace_likelihood,
)
from lwdvc.train.loop import train

from .conftest import tiny_config, tiny_objective


def test_precision_is_validated():
    assert tiny_config().precision == "float32"
    assert tiny_config(precision="bfloat16").precision == "bfloat16"
    with pytest.raises(ConfigError, match="precision"):
        tiny_config(precision="float16")


def test_likelihoods_are_float32_from_bfloat16_inputs():
    torch.manual_seed(0)
    values = (torch.randn(2, 8, 4, 4) * 3).round()
    scales = torch.rand(2, 8, 4, 4) * 4 + 0.2
    estimator, bottleneck = BitEstimator(8), EntropyBottleneck(8)
    cases = [(laplace_likelihood, (values, scales)), (gaussian_likelihood, (values, scales)),
             (gaussian_conditional_likelihood, (values, scales)),
             (lambda v: factorized_likelihood(v, estimator), (values,)), (bottleneck.likelihood, (values,))]
    for fn, args in cases:
        reference = fn(*args)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = fn(*(a.bfloat16() if a is scales else a for a in args))
        assert low.dtype == torch.float32
        # only the bfloat16 rounding of the scales differs (at most 2^-8 relative)
        assert torch.allclose(low, reference, rtol=0.05, atol=1e-6), fn


def test_bfloat16_objective_matches_float32():
    objective, group, rate = tiny_objective()
    torch.manual_seed(1)
    full = objective(group, rate)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = objective(group, rate)
    assert low["loss"].dtype == torch.float32
    assert float(low["loss"].detach()) == pytest.approx(float(full["loss"].detach()), rel=0.05)
    assert float(low["bpp"]) == pytest.approx(float(full["bpp"]), rel=0.05)


def test_bfloat16_run_trains_float32_weights(tmp_path):
    result = train(tiny_config(steps=2, precision="bfloat16"), tmp_path, progress=False)
    assert result["step"] == 2
    assert all(t.dtype == torch.float32 for t in result["codec"].state_dict().values() if t.is_floating_point())
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result["history"])
