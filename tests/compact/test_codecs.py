"""compact() on the codec decoders: every decoder module, random masks, exactness and MACs."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels.compaction import channel_groups, compact
from lwdvc_kernels.macs import count_macs

from .helpers import masks_for_reduction

models = pytest.importorskip("lwdvc.models", reason="lwdvc.models (codec models) is not installed")
if not hasattr(models, "build"):
    pytest.skip("lwdvc.models.build is missing", allow_module_level=True)

CODECS = [name for name in ("dcvc", "dcvc_hem", "dcvc_hem_intra", "fvc") if name in models.available()]


def _decoder(name: str):
    torch.manual_seed(0)
    model = models.build(name).eval()
    with torch.no_grad():  # non-trivial weights everywhere (offset convs start at zero)
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn_like(p) / max(1, p[0].numel()) ** 0.5)
            elif p.dim() == 1:
                p.uniform_(0.5, 1.0) if p.shape[0] else None
    return model, model.decoder_modules(), model.decoder_example_inputs(64, 64)


def _check(module, inputs, reduction, seed, round_to=1):
    analysis = channel_groups(module, inputs)
    assert analysis.dense_macs == count_macs(module, *inputs)
    if not analysis.prunable:
        return None
    masks = masks_for_reduction(analysis, reduction, seed)
    small, keep = compact(module, inputs, masks=masks, round_to=round_to, return_masks=True)
    assert count_macs(small, *inputs) == analysis.macs(keep)
    return analysis, keep


@pytest.mark.parametrize("codec", CODECS)
def test_codec_decoders_at_65_percent(codec):
    _, modules, inputs = _decoder(codec)
    dense = pruned = 0
    for name, module in modules.items():
        result = _check(module, inputs[name], 0.65, seed=len(name))
        if result is not None:
            analysis, keep = result
            dense += analysis.dense_macs
            pruned += analysis.macs(keep)
    assert pruned < 0.6 * dense  # fixed boundary channels keep a little above 35 %


@pytest.mark.slow
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("reduction", [0.30, 0.50, 0.80])
def test_codec_decoders_other_reductions(codec, reduction):
    _, modules, inputs = _decoder(codec)
    for name, module in modules.items():
        _check(module, inputs[name], reduction, seed=7, round_to=8 if reduction == 0.5 else 1)
