"""The range coder's models: round trips, escapes, rates near the entropy, bad input."""
import math

import numpy as np
import pytest
import torch

from lwdvc.bitstream.symbols import CONTINUOUS_RADIUS, BitstreamError, FactorizedTable, SymbolReader, SymbolWriter
from lwdvc.models.entropy import BitEstimator, gaussian_likelihood, laplace_likelihood, likelihood_to_bits


def _laplace_sample(generator, scales):
    u = torch.rand(scales.shape, generator=generator) - 0.5
    return torch.round(-scales * torch.sign(u) * torch.log1p(-2 * u.abs()))


@pytest.mark.parametrize("kind", ["laplace", "gaussian"])
def test_continuous_round_trip_and_rate(kind):
    generator = torch.Generator().manual_seed(3)
    scales = torch.exp(torch.empty(2, 8, 6, 5).uniform_(-3, 3, generator=generator))
    symbols = _laplace_sample(generator, scales) if kind == "laplace" else \
        torch.round(torch.randn(scales.shape, generator=generator) * scales)
    writer = SymbolWriter()
    getattr(writer, kind)(symbols, scales)
    data = writer.getvalue()
    decoded = getattr(SymbolReader(data), kind)(scales)
    assert decoded.shape == symbols.shape and torch.equal(decoded, symbols)
    likelihood = laplace_likelihood(symbols, scales) if kind == "laplace" else gaussian_likelihood(symbols, scales)
    estimate = float(likelihood_to_bits(likelihood).sum())
    assert 8 * len(data) <= estimate * 1.03 + 64


def test_values_beyond_the_model_range_are_escaped_not_clipped():
    scales = torch.full((1, 1, 2, 4), 0.5)
    symbols = torch.tensor([[[[0.0, CONTINUOUS_RADIUS, -CONTINUOUS_RADIUS - 7, 5e6],
                              [3.0, -(2.0 ** 31), CONTINUOUS_RADIUS + 1, -1.0]]]])
    writer = SymbolWriter()
    writer.laplace(symbols, scales)
    writer.laplace(torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0]))  # a second call follows the escapes
    reader = SymbolReader(writer.getvalue())
    assert torch.equal(reader.laplace(scales), symbols)
    assert torch.equal(reader.laplace(torch.tensor([1.0, 1.0])), torch.tensor([2.0, -1.0]))


def test_factorized_round_trip_with_a_learnt_table():
    torch.manual_seed(0)
    estimator = BitEstimator(6)
    with torch.no_grad():
        for layer in (estimator.f1, estimator.f2, estimator.f3, estimator.f4):
            layer.h.normal_(0, 1)
            layer.b.normal_(0, 1)
    from lwdvc.bitstream.priors import factorized_table

    table = factorized_table(estimator, radius=15)
    assert table.probabilities.shape == (6, 31) and np.isfinite(table.probabilities).all()
    symbols = torch.randint(-20, 21, (2, 6, 3, 4)).float()  # some beyond the radius
    writer = SymbolWriter()
    writer.factorized(symbols, table)
    decoded = SymbolReader(writer.getvalue()).factorized((2, 6, 3, 4), table)
    assert torch.equal(decoded, symbols)


def test_factorized_table_matches_the_rate_estimate_inside_the_radius():
    torch.manual_seed(1)
    estimator = BitEstimator(3)
    from lwdvc.bitstream.priors import factorized_table
    from lwdvc.models.entropy import factorized_likelihood

    table = factorized_table(estimator, radius=8)
    grid = torch.arange(-8, 9, dtype=torch.float32).view(1, 1, 1, -1).expand(1, 3, 1, 17)
    expected = factorized_likelihood(grid, estimator)[0, :, 0].detach().double().numpy()
    assert np.allclose(table.probabilities, expected, rtol=1e-4, atol=1e-7)


def test_bad_input_is_named():
    writer = SymbolWriter()
    with pytest.raises(ValueError, match="integers"):
        writer.laplace(torch.tensor([0.5]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="differ in size"):
        writer.laplace(torch.tensor([1.0, 2.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN"):
        writer.gaussian(torch.tensor([1.0]), torch.tensor([math.nan]))
    with pytest.raises(TypeError, match="floating-point"):
        writer.laplace(torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(BitstreamError, match="32-bit words"):
        SymbolReader(b"abc")
    with pytest.raises(ValueError, match=r"must be \[N, 3, H, W\]"):
        writer.factorized(torch.zeros(1, 2, 1, 1), FactorizedTable(np.ones((3, 5)), 2))
