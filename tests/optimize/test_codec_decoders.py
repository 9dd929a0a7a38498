"""optimize on every decoder module of the three codecs (small widths and frames): float32 equal
within 1e-5, bf16 within its documented bound, and the expected layers fused."""
from __future__ import annotations

import pytest
import torch

from lwdvc.models import build
from lwdvc_kernels.optimization import DTYPE_TOLERANCE, FusedConv2d, FusedGDN, optimize
from lwdvc_kernels.optimization.verify import relative_error


def test_subpel_igdn_resblock_decoder_fast():
    torch.manual_seed(0)
    model = build("dcvc", width=0.25).eval()
    module = model.decoder_modules()["contextualDecoder_part1"]
    args = tuple(model.decoder_example_inputs(64, 64)["contextualDecoder_part1"])
    fast, report = optimize(module, args, return_report=True)
    assert relative_error(module, fast, args) <= 1e-5
    text = "\n".join(report.fused)
    assert text.count("shuffle x2") == 4 and text.count("GDN(inverse=True)") == 3 and "+residual" in text


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["dcvc", "dcvc_hem", "fvc"])
def test_every_decoder_module(codec):
    torch.manual_seed(0)
    model = build(codec, width=0.25).eval()
    inputs = model.decoder_example_inputs(64, 64)
    fused_layers = 0
    for name, module in model.decoder_modules().items():
        args = tuple(inputs[name])
        fast = optimize(module, args)  # verify=True: raises beyond 1e-5
        assert relative_error(module, fast, args) <= 1e-5, name
        fused_layers += sum(isinstance(m, (FusedConv2d, FusedGDN)) for m in fast.modules())
        low = optimize(module, args, dtype=torch.bfloat16, verify=False)
        assert relative_error(module, low, args) <= DTYPE_TOLERANCE[torch.bfloat16], name
    assert fused_layers >= 10
