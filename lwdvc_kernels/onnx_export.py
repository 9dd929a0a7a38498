"""Export of (compacted, optimised) models to ONNX, the engine's custom ops included.

``export_onnx(model, example_inputs, path)`` runs ``torch.onnx.export`` (the ``torch.export``
based exporter, opset 19) with a translation of every ``torch.ops.lwdvc`` op that inference
graphs contain:

* ``deform_conv2d`` -> ONNX ``DeformConv`` (opset 19; the same offset layout as torchvision's).
  A compacted layer's uneven offset groups are exported exactly by giving every input channel
  its own offset group (a ``Gather`` repeats each group's offsets over its channels).
* ``conv2d_epilogue`` / ``conv2d_narrow`` -> ``Conv``, the activation (``Relu`` /
  ``LeakyRelu``), ``DepthToSpace`` (CRD, as ``pixel_shuffle``) and ``Add``.
* ``gdn`` -> ``Conv`` over ``x^2`` with ``gamma`` as a 1x1 kernel, ``Sqrt``, ``Div`` / ``Mul``.
* ``to_channels_last`` -> ``Identity`` or ``Cast`` (ONNX has no memory formats).

``run_onnx(path, example_inputs)`` runs the file in ONNX Runtime (CPU). An op with no export
rule anywhere raises :class:`ExportError` naming it. Needs the packages of the ``export``
extra (``onnx``, ``onnxscript``, ``onnxruntime``).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["export_onnx", "run_onnx", "onnx_max_error", "ExportError", "OPSET"]

#: ONNX opset of the export (DeformConv needs 19).
OPSET = 19


class ExportError(RuntimeError):
    """The model cannot be exported (an op without an export rule, a missing package)."""


def _onnxscript():
    try:
        from onnxscript import opset19
    except ImportError as error:
        raise ExportError("ONNX export needs the packages onnx, onnxscript and onnxruntime "
                          "(pip install 'lwdvc[export]')") from error
    return opset19


def _translations() -> dict:
    op = _onnxscript()

    def pads(padding):
        return [int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])]

    def deform_conv2d(input, weight, offset, bias, stride, padding, dilation, groups, offset_groups,
                      offset_group_sizes=None):
        kh, kw = int(weight.shape[2]), int(weight.shape[3])
        if offset_group_sizes is not None:  # uneven groups: one offset group per input channel
            taps = 2 * kh * kw
            index = [g * taps + t for g, size in enumerate(offset_group_sizes) for _ in range(int(size))
                     for t in range(taps)]
            offset = op.Gather(offset, op.Constant(value_ints=index), axis=1)
            offset_groups = sum(int(s) for s in offset_group_sizes)
        return op.DeformConv(input, weight, offset, bias, strides=[int(s) for s in stride], pads=pads(padding),
                             dilations=[int(d) for d in dilation], group=int(groups),
                             offset_group=int(offset_groups), kernel_shape=[kh, kw])

    def activate(y, activation, negative_slope):
        if activation == "relu":
            return op.Relu(y)
        if activation == "leaky_relu":
            return op.LeakyRelu(y, alpha=float(negative_slope))
        return y

    def conv2d_epilogue(input, weight, bias, residual, stride, padding, dilation, groups, activation,
                        negative_slope, upscale):
        kernel = [int(weight.shape[2]), int(weight.shape[3])]
        y = op.Conv(input, weight, bias, strides=[int(s) for s in stride], pads=pads(padding),
                    dilations=[int(d) for d in dilation], group=int(groups), kernel_shape=kernel)
        y = activate(y, activation, negative_slope)
        if int(upscale) > 1:
            y = op.DepthToSpace(y, blocksize=int(upscale), mode="CRD")
        return y if residual is None else op.Add(y, residual)

    def conv2d_narrow(input, weight, bias, residual, stride, padding, activation, negative_slope):
        return conv2d_epilogue(input, weight, bias, residual, stride, padding, [1, 1], 1, activation,
                               negative_slope, 1)

    def gdn(input, beta, gamma, inverse):
        channels = int(gamma.shape[0])
        kernel = op.Reshape(gamma, op.Constant(value_ints=[channels, channels, 1, 1]))
        root = op.Sqrt(op.Conv(op.Mul(input, input), kernel, beta, kernel_shape=[1, 1]))
        return op.Mul(input, root) if inverse else op.Div(input, root)

    def to_channels_last(input, dtype=None):
        if dtype is None:
            return op.Identity(input)
        return op.Cast(input, to=_onnx_dtype(dtype))

    lwdvc = torch.ops.lwdvc
    return {lwdvc.deform_conv2d.default: deform_conv2d, lwdvc.conv2d_epilogue.default: conv2d_epilogue,
            lwdvc.conv2d_narrow.default: conv2d_narrow, lwdvc.gdn.default: gdn,
            lwdvc.to_channels_last.default: to_channels_last}


def _onnx_dtype(dtype: torch.dtype) -> int:
    from onnx import TensorProto

    table = {torch.float32: TensorProto.FLOAT, torch.float16: TensorProto.FLOAT16,
             torch.bfloat16: TensorProto.BFLOAT16, torch.float64: TensorProto.DOUBLE}
    if dtype not in table:
        raise ExportError(f"ONNX export: no ONNX type for {dtype}")
    return table[dtype]


def _inputs(example_inputs: Any) -> tuple:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def export_onnx(model: nn.Module, example_inputs: Any, path: str | os.PathLike) -> Path:
    """Export ``model`` (eval mode, no gradients) traced on ``example_inputs`` to ``path``
    (written atomically), opset :data:`OPSET`, with static shapes.

    Raises:
        ExportError: a missing package, or an op no exporter rule covers (named).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"export_onnx expects an nn.Module, got {type(model).__name__}")
    table = _translations()
    try:
        with torch.no_grad():
            program = torch.export.export(model.eval(), _inputs(example_inputs), strict=False)
    except Exception as error:
        raise ExportError(f"ONNX export of {type(model).__name__}: torch.export cannot trace it "
                          f"({str(error).strip().splitlines()[0][:300]})") from error
    for node in program.graph.nodes:
        target = node.target
        if (node.op == "call_function" and isinstance(target, torch._ops.OpOverload)
                and target.namespace not in ("aten", "prims") and target not in table):
            raise ExportError(f"ONNX export of {type(model).__name__}: op {target.name()!r} has no export rule")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        onnx_program = torch.onnx.export(program, dynamo=True, opset_version=OPSET, custom_translation_table=table,
                                         verbose=False, report=False)
        onnx_program.save(tmp)
        os.replace(tmp, path)
    except Exception as error:  # the exporter's messages are long: its first line
        raise ExportError(f"ONNX export of {type(model).__name__} failed: "
                          f"{str(error).strip().splitlines()[0][:300]}") from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def run_onnx(path: str | os.PathLike, example_inputs: Any) -> list[torch.Tensor]:
    """Outputs of the ONNX file at ``path`` in ONNX Runtime (CPU) on ``example_inputs``."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ExportError("running an ONNX file needs onnxruntime (pip install 'lwdvc[export]')") from error
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {spec.name: t.detach().cpu().contiguous().numpy()
             for spec, t in zip(session.get_inputs(), _inputs(example_inputs))}
    return [torch.from_numpy(out) for out in session.run(None, feeds)]


def onnx_max_error(path: str | os.PathLike, model: nn.Module, example_inputs: Any) -> float:
    """Largest absolute difference between the ONNX file's outputs (ONNX Runtime) and
    ``model``'s (PyTorch, no gradients) on ``example_inputs``."""
    with torch.no_grad():
        expected = model(*_inputs(example_inputs))
    expected = list(expected) if isinstance(expected, (tuple, list)) else [expected]
    got = run_onnx(path, example_inputs)
    if len(got) != len(expected) or any(a.shape != b.shape for a, b in zip(got, expected)):
        raise ExportError(f"{path}: ONNX outputs {[tuple(a.shape) for a in got]} do not match the model's "
                          f"{[tuple(b.shape) for b in expected]}")
    return max(float((a - b.float()).abs().max()) for a, b in zip(got, expected))
