"""The table of the lwdvc ops: each op's facts, declared once.

Read by ``_extension`` (without the compiled extension it defines these schemas in Python), by
``_register`` (fake kernels, Python kernels on devices without a compiled one, Python autograd
without the extension), by the functional API (its ``backends``) and by the registration tests
(every schema compiled in ``csrc/ops/<op>.cpp`` must equal the one here).

Each op's ``module`` defines, by name:

* ``<op>_fake(*args)``: shape, dtype and device of the output for fake / meta tensors
  (``torch.compile``, ``torch.export``), after the op's argument checks;
* ``<op>_kernel(*args)``: the Python kernel, registered for the ``devices`` that have no
  compiled kernel (all of them when the extension is absent);
* for ``differentiable`` ops, ``<op>_setup_context(ctx, inputs, output)`` and
  ``<op>_gradient(ctx, *grads)``: the autograd formula used when the extension (whose autograd
  is C++) is absent.
"""
from __future__ import annotations

from dataclasses import dataclass

# Functional API backend names, the same for every op: "auto" = the dispatcher
# (torch.ops.lwdvc.<op>), "reference" = plain PyTorch, "triton" = Triton kernels,
# "torchvision" = torchvision's kernel.
AUTO, REFERENCE, TRITON, TORCHVISION = "auto", "reference", "triton", "torchvision"


@dataclass(frozen=True)
class OpSpec:
    """One op: ``torch.ops.lwdvc.<name>``."""

    name: str
    schema: str  # "<name>(<arguments>) -> <returns>", without the namespace
    module: str  # Python module holding <name>_fake, <name>_kernel (and the autograd formula)
    backends: tuple[str, ...]  # backends of its functional API; () when it has none
    devices: tuple[str, ...] = ("cpu", "cuda")  # devices the op runs on
    differentiable: bool = False


OPS: tuple[OpSpec, ...] = (
    OpSpec("masked_weight", "masked_weight(Tensor weight, Tensor mask, float beta, int dim) -> Tensor",
           "lwdvc_kernels.ops.masked_weight", (AUTO, REFERENCE, TRITON), differentiable=True),
    OpSpec("masked_weight_backward",
           "masked_weight_backward(Tensor grad, Tensor mask, float beta, int dim) -> Tensor",
           "lwdvc_kernels.ops.masked_weight", (), differentiable=True),
    OpSpec("masked_weights",
           "masked_weights(Tensor[] weights, Tensor[] masks, float beta, int[] dims) -> Tensor[]",
           "lwdvc_kernels.ops.masked_weights", (AUTO, REFERENCE, TRITON), differentiable=True),
    OpSpec("masked_weights_backward",
           "masked_weights_backward(Tensor[] grads, Tensor[] masks, float beta, int[] dims) -> Tensor[]",
           "lwdvc_kernels.ops.masked_weights", (), differentiable=True),
    OpSpec("channel_norm", "channel_norm(Tensor[] weights, int[] dims) -> Tensor",
           "lwdvc_kernels.ops.channel_norm", (AUTO, REFERENCE, TRITON)),
    OpSpec("conv2d_epilogue",
           "conv2d_epilogue(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
           "int[2] padding, int[2] dilation, int groups, str activation, float negative_slope, int upscale) "
           "-> Tensor",
           "lwdvc_kernels.ops.conv2d_epilogue", (AUTO, REFERENCE, TRITON)),
    OpSpec("conv2d_narrow",
           "conv2d_narrow(Tensor input, Tensor weight, Tensor? bias, Tensor? residual, int[2] stride, "
           "int[2] padding, str activation, float negative_slope) -> Tensor",
           "lwdvc_kernels.ops.conv2d_epilogue", (AUTO,), devices=("cpu",)),
    OpSpec("gdn", "gdn(Tensor input, Tensor beta, Tensor gamma, bool inverse) -> Tensor",
           "lwdvc_kernels.ops.gdn", (AUTO, REFERENCE, TRITON)),
    OpSpec("to_channels_last", "to_channels_last(Tensor input, ScalarType? dtype) -> Tensor",
           "lwdvc_kernels.ops.to_channels_last", (AUTO, REFERENCE)),
    OpSpec("deform_conv2d",
           "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor? bias, int[2] stride, "
           "int[2] padding, int[2] dilation, int groups, int offset_groups, int[]? offset_group_sizes=None) "
           "-> Tensor",
           "lwdvc_kernels.ops.deform_conv2d", (AUTO, REFERENCE, TORCHVISION)),
)

_BY_NAME = {spec.name: spec for spec in OPS}


def op_spec(name: str) -> OpSpec:
    """The table entry of ``torch.ops.lwdvc.<name>`` (KeyError naming it if there is none)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no lwdvc op named {name!r}; the ops are {sorted(_BY_NAME)}") from None


def check_backend(op: str, backend: str) -> str:
    """Returns ``backend`` if the functional API of ``op`` has it.

    Raises:
        ValueError: naming the op, the backend and the ones it has.
    """
    backends = op_spec(op).backends
    if backend not in backends:
        raise ValueError(f"{op}: unknown backend {backend!r}; expected one of {backends}")
    return backend
