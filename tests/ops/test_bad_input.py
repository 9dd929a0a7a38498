"""Bad input gives a clear error naming the problem, on every backend, never a crash."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels import ops
from tests.ops.helpers import BACKENDS, DIRECT_OP_ERRORS, UNSAFE_FOR_KERNELS

W = torch.randn(8, 4, 3, 3)
M = torch.ones(8)

BAD_MASKED_WEIGHT = [
    pytest.param((W, torch.ones(5), 0.5, 0), ValueError, "mask has length 5", id="mask-length"),
    pytest.param((W, torch.ones(8, 1), 0.5, 0), ValueError, "mask must be 1-D", id="mask-2d"),
    pytest.param((W, torch.ones(8, dtype=torch.long), 0.5, 0), TypeError, "mask must be a floating", id="mask-int"),
    pytest.param((W, M, 1.5, 0), ValueError, "beta must lie in", id="beta-high"),
    pytest.param((W, M, -0.1, 0), ValueError, "beta must lie in", id="beta-negative"),
    pytest.param((W, M, float("nan"), 0), ValueError, "beta must lie in", id="beta-nan"),
    pytest.param((W, M, 0.5, 4), IndexError, "dim 4 is out of range", id="dim-high"),
    pytest.param((W, M, 0.5, -5), IndexError, "dim -5 is out of range", id="dim-low"),
    pytest.param((torch.ones(8, 3, dtype=torch.int32), M, 0.5, 0), TypeError, "must be a floating-point",
                 id="int-weight"),
    pytest.param((torch.empty(0, 3), torch.ones(0), 0.5, 0), ValueError, "is empty", id="empty-weight"),
    pytest.param((torch.tensor(1.0), torch.ones(1), 0.5, 0), IndexError, "at least one dimension", id="scalar-weight"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args,error,message", BAD_MASKED_WEIGHT)
def test_masked_weight_rejects(backend, args, error, message):
    with pytest.raises(error, match=message):
        ops.masked_weight(*args, backend=backend)


@pytest.mark.parametrize("args,error,message", [p for p in BAD_MASKED_WEIGHT if p.id in UNSAFE_FOR_KERNELS])
def test_masked_weight_backward_op_rejects_what_its_kernel_cannot_run(args, error, message):
    with pytest.raises(DIRECT_OP_ERRORS, match="masked_weight_backward"):
        torch.ops.lwdvc.masked_weight_backward(*args)


def test_mask_on_another_device_is_named():
    weight = torch.randn(4, 3, device="meta")
    with pytest.raises(ValueError, match="mask is on cpu but the tensor is on meta"):
        ops.masked_weight(weight, torch.ones(4), 0.5, 0)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown backend 'fast'"):
        ops.masked_weight(W, M, 0.5, 0, backend="fast")


BAD_CHANNEL_NORM = [
    pytest.param(([], []), ValueError, "at least one weight", id="no-weights"),
    pytest.param(([W], [0, 1]), ValueError, "1 weights but 2 dims", id="dims-count"),
    pytest.param(([W, torch.randn(3, 7)], [0, 1]), ValueError, "weight 1 has 7 channels", id="channel-mismatch"),
    pytest.param(([W.long()], [0]), TypeError, "must be a floating-point", id="int-weight"),
    pytest.param(([W], [9]), IndexError, "dim 9 is out of range", id="dim"),
    pytest.param(([torch.empty(0, 2)], [1]), ValueError, "is empty", id="empty"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args,error,message", BAD_CHANNEL_NORM)
def test_channel_norm_rejects(backend, args, error, message):
    with pytest.raises(error, match=message):
        ops.channel_norm(*args, backend=backend)
