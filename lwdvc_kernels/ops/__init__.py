"""The lwdvc custom ops (``torch.ops.lwdvc.*``) and their functional API.

Every op is declared once, in :mod:`lwdvc_kernels.ops.registry`; importing this package loads
the extension (or defines the schemas in Python) and registers each op's Python side.
"""
from lwdvc_kernels.ops import _register  # noqa: F401  (must come first: defines and registers the ops)
from lwdvc_kernels.ops._extension import EXTENSION, EXTENSION_ERROR, with_cuda_kernels
from lwdvc_kernels.ops.channel_norm import channel_norm
from lwdvc_kernels.ops.conv2d_epilogue import (
           conv2d_epilogue,
           conv2d_narrow,
           narrow_conv_in_epilogue,
           narrow_conv_supported,
)
from lwdvc_kernels.ops.deform_conv2d import deform_conv2d
from lwdvc_kernels.ops.gdn import gdn
from lwdvc_kernels.ops.masked_weight import masked_weight
from lwdvc_kernels.ops.masked_weights import masked_weights
from lwdvc_kernels.ops.to_channels_last import to_channels_last

__all__ = ["masked_weight", "masked_weights", "channel_norm", "conv2d_epilogue", "conv2d_narrow",
           "narrow_conv_supported", "narrow_conv_in_epilogue", "deform_conv2d", "gdn", "to_channels_last",
           "with_cuda_kernels", "EXTENSION", "EXTENSION_ERROR"]
