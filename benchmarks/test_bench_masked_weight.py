"""masked_weight forward + backward over a DCVC-sized decoder: C++ kernels vs eager PyTorch.

Providers: ``eager`` (``w * m.view(...)`` + a Python autograd Function per weight: the
reference), ``cpu`` (one ``masked_weight`` C++ op and autograd node per weight) and
``cpu_multi`` (one ``masked_weights`` call and one autograd node for all weights).
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.decoder_shapes import make_weights
from lwdvc_kernels import ops

PROVIDERS = ["eager", "cpu", "cpu_multi"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_masked_weight_fwd_bwd(benchmark, record_median, provider, dtype):
    weights, masks, grads, dims = make_weights(dtype)
    backend = "reference" if provider == "eager" else "auto"
    beta = 0.3

    def step():
        if provider == "cpu_multi":
            outs = ops.masked_weights(weights, masks, beta, dims)
        else:
            outs = [ops.masked_weight(w, m, beta, d, backend=backend) for w, m, d in zip(weights, masks, dims)]
        return torch.autograd.grad(outs, weights, grads)

    result = benchmark.pedantic(step, rounds=20, warmup_rounds=3)
    assert len(result) == len(weights)
    params = sum(w.numel() for w in weights)
    record_median(benchmark, f"masked_weight fwd+bwd {str(dtype)[6:]}", provider, baseline="eager",
                  params_millions=params / 1e6)
