"""Loads the compiled extension, or defines the ops in Python when it is absent.

With ``lwdvc_kernels._C`` the schemas, C++ CPU/CUDA kernels and C++ autograd come from C++.
Without it (source checkout, unsupported platform) the same schemas are defined here with the
plain PyTorch reference as the CPU/CUDA kernel and a Python autograd formula, so every caller
keeps working, only slower. ``EXTENSION`` is the loaded module or None, ``EXTENSION_ERROR``
the reason it could not be loaded.
"""
from __future__ import annotations

import torch

from lwdvc_kernels.ops.fused_validation import (
    check_conv2d_epilogue_args,
    check_gdn_args,
    check_to_channels_last_args,
)
from lwdvc_kernels.ops.reference.channel_norm import channel_norm_reference
from lwdvc_kernels.ops.reference.conv2d_epilogue import conv2d_epilogue_reference
from lwdvc_kernels.ops.reference.deform_conv2d import deform_conv2d_reference
from lwdvc_kernels.ops.reference.gdn import gdn_reference
from lwdvc_kernels.ops.reference.to_channels_last import to_channels_last_reference
from lwdvc_kernels.ops.reference.masked_weight import masked_weight_backward, masked_weight_forward
from lwdvc_kernels.ops.validation import (
    check_channel_norm_args,
    check_masked_weight_args,
    check_masked_weights_args,
)

EXTENSION = None
EXTENSION_ERROR: str | None = None

try:
    from lwdvc_kernels import _C as EXTENSION  # noqa: N811  (registers torch.ops.lwdvc.*)
except ImportError as exc:  # pragma: no cover - exercised only without a build
    EXTENSION_ERROR = f"{type(exc).__name__}: {exc}"


def _define_python_fallback() -> None:
    lib = torch.library.Library("lwdvc", "DEF")  # noqa: TOR901 - kept alive below
    lib.define("masked_weight(Tensor weight, Tensor mask, float beta, int dim) -> Tensor")
    lib.define("masked_weight_backward(Tensor grad, Tensor mask, float beta, int dim) -> Tensor")
    lib.define("masked_weights(Tensor[] weights, Tensor[] masks, float beta, int[] dims) -> Tensor[]")
    lib.define("masked_weights_backward(Tensor[] grads, Tensor[] masks, float beta, int[] dims) -> Tensor[]")
    lib.define("channel_norm(Tensor[] weights, int[] dims) -> Tensor")
    lib.define(
        "conv2d_epilogue(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
        "int[2] padding, int[2] dilation, int groups, str activation, float negative_slope, int upscale) -> Tensor"
    )
    lib.define(
        "conv2d_narrow(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
        "int[2] padding, str activation, float negative_slope) -> Tensor"
    )
    lib.define("gdn(Tensor input, Tensor beta, Tensor gamma, bool inverse) -> Tensor")
    lib.define("to_channels_last(Tensor input, ScalarType? dtype) -> Tensor")
    lib.define(
        "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor? bias, int[2] stride, int[2] padding, "
        "int[2] dilation, int groups, int offset_groups, int[]? offset_group_sizes=None) -> Tensor"
    )

    def forward(weight, mask, beta, dim):
        d = check_masked_weight_args("masked_weight", "weight", weight, mask, beta, dim)
        return masked_weight_forward(weight, mask, d)

    def backward(grad, mask, beta, dim):
        d = check_masked_weight_args("masked_weight_backward", "grad", grad, mask, beta, dim)
        return masked_weight_backward(grad, mask, beta, d)

    def forward_list(weights, masks, beta, dims):
        wrapped = check_masked_weights_args("masked_weights", "weight", weights, masks, beta, dims)
        return [masked_weight_forward(w, m, d) for w, m, d in zip(weights, masks, wrapped)]

    def backward_list(grads, masks, beta, dims):
        wrapped = check_masked_weights_args("masked_weights_backward", "grad", grads, masks, beta, dims)
        return [masked_weight_backward(g, m, beta, d) for g, m, d in zip(grads, masks, wrapped)]

    def norm(weights, dims):
        return channel_norm_reference(weights, check_channel_norm_args(weights, dims))

    def conv2d_epilogue(*args):
        check_conv2d_epilogue_args(*args[:9], args[10])
        return conv2d_epilogue_reference(*args)

    def conv2d_narrow(input, weight, bias, residual, stride, padding, activation, negative_slope):
        check_conv2d_epilogue_args(input, weight, bias, residual, stride, padding, [1, 1], 1, activation, 1)
        if input.dtype != torch.float32:
            raise RuntimeError(f"conv2d_narrow: input must be float32, got {input.dtype}")
        if weight.shape[0] > 8:
            raise RuntimeError(f"conv2d_narrow: at most 8 output channels, got {weight.shape[0]}")
        return conv2d_epilogue_reference(input, weight, bias, residual, stride, padding, [1, 1], 1, activation,
                                         negative_slope, 1)

    def gdn(input, beta, gamma, inverse):
        check_gdn_args(input, beta, gamma)
        return gdn_reference(input, beta, gamma, inverse)

    def to_channels_last(input, dtype):
        check_to_channels_last_args(input, dtype)
        return to_channels_last_reference(input, dtype).clone(memory_format=torch.channels_last)

    for key in ("CPU", "CUDA"):
        lib.impl("masked_weight", forward, key)
        lib.impl("masked_weight_backward", backward, key)
        lib.impl("masked_weights", forward_list, key)
        lib.impl("masked_weights_backward", backward_list, key)
        lib.impl("channel_norm", norm, key)
        lib.impl("conv2d_epilogue", conv2d_epilogue, key)
        lib.impl("conv2d_narrow", conv2d_narrow, key)
        lib.impl("gdn", gdn, key)
        lib.impl("to_channels_last", to_channels_last, key)
        lib.impl("deform_conv2d", deform_conv2d_reference, key)

    def setup_context(ctx, inputs, output):
        _, mask, beta, dim = inputs
        ctx.save_for_backward(mask)
        ctx.beta, ctx.dim = beta, dim

    def grad_fn(ctx, grad):
        (mask,) = ctx.saved_tensors
        return torch.ops.lwdvc.masked_weight_backward(grad, mask, ctx.beta, ctx.dim), None, None, None

    for name in ("lwdvc::masked_weight", "lwdvc::masked_weight_backward"):
        torch.library.register_autograd(name, grad_fn, setup_context=setup_context, lib=lib)

    def setup_list_context(ctx, inputs, output):
        _, masks, beta, dims = inputs
        ctx.save_for_backward(*masks)
        ctx.beta, ctx.dims = beta, list(dims)
        ctx.set_materialize_grads(False)

    def grad_list_fn(ctx, grads):
        # One gradient per weight; outputs unused in the loss (grad None) are skipped.
        masks = ctx.saved_tensors
        live = [k for k, grad in enumerate(grads) if grad is not None]
        result = [None] * len(grads)
        if live:
            scaled = torch.ops.lwdvc.masked_weights_backward(
                [grads[k] for k in live], [masks[k] for k in live], ctx.beta, [ctx.dims[k] for k in live])
            for k, grad in zip(live, scaled):
                result[k] = grad
        return result, [None] * len(masks), None, None

    for name in ("lwdvc::masked_weights", "lwdvc::masked_weights_backward"):
        torch.library.register_autograd(name, grad_list_fn, setup_context=setup_list_context, lib=lib)
    globals()["_FALLBACK_LIBRARY"] = lib


if EXTENSION is None:
    _define_python_fallback()


def with_cuda_kernels() -> bool:
    """True when the extension was compiled with its CUDA kernels."""
    return bool(EXTENSION is not None and EXTENSION.with_cuda)
