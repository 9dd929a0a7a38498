"""ONNX export of compacted and optimised models, custom ops included, run in ONNX Runtime."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from lwdvc_kernels import channel_groups, compact
from lwdvc_kernels.nn import DeformConv2d
from lwdvc_kernels.onnx_export import ExportError, export_onnx, run_onnx
from lwdvc_kernels.optimization import optimize
from tests.compact.helpers import masks_for_reduction

pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")


def _close(model: nn.Module, inputs: tuple, path, atol: float = 1e-4) -> None:
    with torch.no_grad():
        expected = model(*inputs)
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    got = run_onnx(path, inputs)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape
        assert float((a - b.float()).abs().max()) <= atol


class DeformBlock(nn.Module):
    """conv -> deformable conv (offsets from a second input) -> conv."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 12, 3, padding=1)
        self.deform = DeformConv2d(12, 10, 3, padding=1, deformable_groups=3, offset_in_channels=4)
        self.tail = nn.Conv2d(10, 3, 3, padding=1)

    def forward(self, x, feature):
        return self.tail(torch.relu(self.deform(torch.relu(self.head(x)), feature)))


def _deform_block() -> tuple[nn.Module, tuple]:
    torch.manual_seed(0)
    model = DeformBlock().eval()
    with torch.no_grad():
        model.deform.conv_offset.weight.normal_(0, 0.3)  # real offsets (the layer starts at zero)
    return model, (torch.randn(1, 3, 9, 11), torch.randn(1, 4, 9, 11))


def test_deformable_conv_exports_to_deform_conv(tmp_path):
    model, inputs = _deform_block()
    path = export_onnx(model, inputs, tmp_path / "block.onnx")
    import onnx

    assert "DeformConv" in {node.op_type for node in onnx.load(str(path)).graph.node}
    _close(model, inputs, path)


def test_compacted_deformable_conv_with_uneven_offset_groups(tmp_path):
    model, inputs = _deform_block()
    analysis = channel_groups(model, inputs)
    keep = torch.ones(12, dtype=torch.bool)
    keep[[0, 1, 2, 5, 11]] = False  # groups of 4 channels keep 1, 3 and 3
    assert analysis["head"].size == 12
    small = compact(model, inputs, masks={"head": keep}, verify=True)
    assert small.deform.group_sizes == (1, 3, 3)
    _close(small, inputs, export_onnx(small, inputs, tmp_path / "small.onnx"))


def test_optimised_decoder_exports_with_fused_ops(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv2d(16, 12, 3, padding=1),
                          nn.PixelShuffle(2), nn.Conv2d(3, 3, 3, padding=1)).eval()
    x = torch.randn(1, 4, 8, 10)
    fast = optimize(model, (x,))
    path = export_onnx(fast, (x,), tmp_path / "fast.onnx")
    import onnx

    kinds = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "DepthToSpace" in kinds and "LeakyRelu" in kinds
    _close(fast, (x,), path)


models = pytest.importorskip("lwdvc.models")


@pytest.mark.parametrize("codec", ["fvc", "dcvc_hem"])
def test_compacted_codec_decoder_exports(tmp_path, codec):
    torch.manual_seed(0)
    model = models.build(codec).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn_like(p) / max(1, p[0].numel()) ** 0.5)
    modules, inputs = model.decoder_modules(), model.decoder_example_inputs(64, 64)
    name = max(modules, key=lambda n: sum(p.numel() for p in modules[n].parameters()))
    module, example = modules[name], inputs[name]
    masks = masks_for_reduction(channel_groups(module, example), 0.5, seed=0)
    small = compact(module, example, masks=masks, verify=True)
    _close(small, example, export_onnx(small, example, tmp_path / f"{codec}.onnx"))


class Unexportable(nn.Module):
    def forward(self, x):
        return torch.ops.lwdvc.channel_norm([x.flatten()], [0])


def test_an_op_without_an_export_rule_is_named(tmp_path):
    with pytest.raises(ExportError, match="lwdvc::channel_norm"):
        export_onnx(Unexportable(), (torch.randn(2, 3),), tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()
