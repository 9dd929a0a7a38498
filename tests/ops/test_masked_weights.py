"""masked_weights: the list op against a float64 oracle and against per-tensor masked_weight."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels import ops
from tests.ops.helpers import (
    BACKENDS,
    DIRECT_OP_ERRORS,
    DTYPES,
    TOLERANCE,
    UNSAFE_FOR_KERNELS,
    fractional_mask,
    needs_cuda,
    non_contiguous,
    random_mask,
    run_without_extension,
)
from tests.ops.helpers import (
    masked_weight_oracle as oracle,
)

# (shape, dim, contiguous) of one list: long rows, short rows (pattern), 1-D, 5-D, Linear-like,
# strided tensors, negative dims.
LIST = [
    ((16, 8, 3, 3), 0, True),
    ((8, 12, 4, 4), 1, True),
    ((10, 70), 1, False),
    ((33,), 0, True),
    ((4, 6, 2, 3, 3), -3, True),
    ((3, 5, 130), 1, False),
    ((6, 9, 3, 3), -1, True),
]
BETA = 0.375  # exactly representable in every dtype


def make_list(spec, dtype, seed=0, requires_grad=True):
    """Random weights (never zeros), masks, output gradients and dims for ``spec``."""
    g = torch.Generator().manual_seed(seed)
    weights, masks, grads, dims = [], [], [], []
    for shape, dim, contiguous in spec:
        w = torch.randn(shape, generator=g).to(dtype)
        w = w if contiguous else non_contiguous(w)
        weights.append(w.requires_grad_(requires_grad))
        masks.append(random_mask(shape[dim], g))
        grads.append(torch.randn(shape, generator=g).to(dtype))
        dims.append(dim)
    return weights, masks, grads, dims


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_and_backward_match_oracle_and_masked_weight(backend, dtype):
    weights, masks, grads, dims = make_list(LIST, dtype, seed=1)
    assert any(not w.is_contiguous() for w in weights)
    outs = ops.masked_weights(weights, masks, BETA, dims, backend=backend)
    got_grads = torch.autograd.grad(outs, weights, grads)
    atol, rtol = TOLERANCE[dtype]
    for k, (w, m, d, grad) in enumerate(zip(weights, masks, dims, grads)):
        want_out, want_grad = oracle(w.detach(), m, BETA, d, grad)
        assert outs[k].dtype == dtype and outs[k].shape == w.shape, k
        torch.testing.assert_close(outs[k].double(), want_out, atol=atol, rtol=rtol)
        torch.testing.assert_close(got_grads[k].double(), want_grad, atol=atol, rtol=rtol)
        # The same kernels as the single-tensor op: bit-identical results.
        single = ops.masked_weight(w, m, BETA, d, backend=backend)
        (single_grad,) = torch.autograd.grad(single, w, grad)
        assert torch.equal(outs[k], single), k
        assert torch.equal(got_grads[k], single_grad), k


@pytest.mark.parametrize("backend", BACKENDS)
def test_float64_factors_are_computed_in_float64(backend):
    """Every float64 tensor of a list is scaled by its factor in float64 (fractional float64
    masks, beta not exact in float32), next to a float32 tensor that keeps its float32 factor."""
    weights, _, grads, dims = make_list(LIST, torch.float64, seed=8)
    assert any(not w.is_contiguous() for w in weights)
    g = torch.Generator().manual_seed(9)
    masks = [fractional_mask(w.size(d), g) for w, d in zip(weights, dims)]
    w32 = torch.randn(6, 70, generator=g).requires_grad_(True)
    m32 = fractional_mask(70, g)
    g32 = torch.randn(6, 70, generator=g)
    beta = 0.3  # not exact in float32
    outs = ops.masked_weights(weights + [w32], masks + [m32], beta, dims + [1], backend=backend)
    got_grads = torch.autograd.grad(outs, weights + [w32], grads + [g32])
    # The backward op called directly too, as the C++ autograd does.
    direct = torch.ops.lwdvc.masked_weights_backward(grads, masks, beta, dims) if backend == "auto" else got_grads
    for k, (w, m, d, grad) in enumerate(zip(weights, masks, dims, grads)):
        want_out, want_grad = oracle(w.detach(), m, beta, d, grad)
        assert outs[k].dtype == torch.float64, k
        for got, want in ((outs[k], want_out), (got_grads[k], want_grad), (direct[k], want_grad)):
            torch.testing.assert_close(got, want, atol=0.0, rtol=1e-14, msg=lambda text, k=k: f"tensor {k}: {text}")
    m32_f = m32.float()
    assert torch.equal(outs[-1], w32.detach() * m32_f)
    assert torch.equal(got_grads[-1], g32 * (m32_f + beta * (1.0 - m32_f)))


@pytest.mark.parametrize("threads", [1, 3, 7])
def test_work_split_over_threads_covers_every_element_once(threads):
    """Large and small, long- and short-row tensors cut into parts across tensor boundaries."""
    spec = [((320, 96, 5, 5), 0, True), ((128, 130, 3, 3), 1, True), ((2, 64, 3, 3), 0, True),
            ((96, 64, 5, 5), 1, True), ((64, 5, 3, 3), 0, True), ((256, 256, 1, 1), 0, True)]
    weights, masks, grads, dims = make_list(spec, torch.float32, seed=2)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        outs = ops.masked_weights(weights, masks, 0.25, dims)
        got_grads = torch.autograd.grad(outs, weights, grads)
    finally:
        torch.set_num_threads(previous)
    for k, (w, m, d, grad) in enumerate(zip(weights, masks, dims, grads)):
        want_out, want_grad = oracle(w.detach(), m, 0.25, d, grad)
        torch.testing.assert_close(outs[k].double(), want_out, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(got_grads[k].double(), want_grad, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_dtypes_and_bool_masks_in_one_list(backend):
    g = torch.Generator().manual_seed(3)
    weights = [torch.randn(6, 4, generator=g).to(dtype) for dtype in DTYPES]
    masks = [random_mask(6, g).bool(), random_mask(6, g), random_mask(6, g).double()]
    outs = ops.masked_weights(weights, masks, 0.5, 0, backend=backend)
    for w, m, out in zip(weights, masks, outs):
        assert out.dtype == w.dtype
        assert torch.equal(out, ops.masked_weight(w, m.float(), 0.5, 0, backend="reference"))


def test_one_node_for_the_list_and_gradients_only_where_needed():
    weights, masks, grads, dims = make_list(LIST[:3], torch.float32, seed=4)
    weights[1].requires_grad_(False)
    masks[0].requires_grad_(True)
    outs = ops.masked_weights(weights, masks, BETA, dims)
    assert len({out.grad_fn for out in outs if out.grad_fn is not None}) == 1
    assert not outs[1].requires_grad or outs[1].grad_fn is outs[0].grad_fn
    # Only output 2 reaches the loss: weight 0 gets no gradient, the mask never gets one.
    (outs[2] * grads[2]).sum().backward()
    assert weights[0].grad is None and masks[0].grad is None
    _, want_grad = oracle(weights[2].detach(), masks[2], BETA, dims[2], grads[2])
    torch.testing.assert_close(weights[2].grad.double(), want_grad, atol=1e-6, rtol=1e-6)


def test_gradcheck_float64():
    """With beta = 0 the backward is the true derivative; beta > 0 is a surrogate by design."""
    small = [((4, 5, 3), 0, True), ((4, 5, 3), 1, False), ((6,), 0, True), ((2, 3, 4), -1, True)]
    weights, masks, _, dims = make_list(small, torch.float64, seed=5)
    masks = [m.double() for m in masks]

    def forward(*ws):
        return tuple(ops.masked_weights(list(ws), masks, 0.0, dims))

    assert torch.autograd.gradcheck(forward, tuple(weights))
    assert torch.autograd.gradgradcheck(forward, tuple(weights))
    # The backward op is linear in its input, so its own derivative is exact for every beta.
    assert torch.autograd.gradcheck(
        lambda *gs: tuple(torch.ops.lwdvc.masked_weights_backward(list(gs), masks, 0.25, dims)), tuple(weights))


def test_opcheck():
    for dtype, beta, spec in ((torch.float32, 0.5, LIST), (torch.bfloat16, 0.0, LIST[2:5])):
        weights, masks, _, dims = make_list(spec, dtype, seed=6)
        torch.library.opcheck(torch.ops.lwdvc.masked_weights.default, (weights, masks, beta, dims))
        grads = [w.detach().clone().requires_grad_() for w in weights]
        torch.library.opcheck(torch.ops.lwdvc.masked_weights_backward.default, (grads, masks, beta, dims))


class TwoConvs(torch.nn.Module):
    """Two convs whose weights are masked by one masked_weights call."""

    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(6, 3, 3, 3))
        self.w2 = torch.nn.Parameter(torch.randn(6, 4, 3, 3))  # transposed conv [in, out, k, k]
        self.register_buffer("m1", torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]))
        self.register_buffer("m2", torch.tensor([0.0, 1.0, 1.0, 0.0]))

    def forward(self, x):
        w1, w2 = ops.masked_weights([self.w1, self.w2], [self.m1, self.m2], 0.5, [0, 1])
        return torch.nn.functional.conv_transpose2d(torch.nn.functional.conv2d(x, w1), w2)


def test_torch_compile_and_export():
    model = TwoConvs()
    x = torch.randn(2, 3, 8, 8)
    eager = model(x)
    eager.sum().backward()
    eager_grads = [model.w1.grad.clone(), model.w2.grad.clone()]
    model.zero_grad()
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, eager)
    out.sum().backward()
    torch.testing.assert_close([model.w1.grad, model.w2.grad], eager_grads)
    exported = torch.export.export(model, (x,))
    assert any("lwdvc.masked_weights" in str(node.target) for node in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(x), eager)


W = torch.randn(8, 4, 3, 3)
M = torch.ones(8)

BAD = [
    pytest.param(([], [], 0.5, []), ValueError, "needs at least one weight", id="empty"),
    pytest.param(([W, W], [M], 0.5, [0, 0]), ValueError, "got 2 weights, 1 masks and 2 dims", id="masks-count"),
    pytest.param(([W], [M], 0.5, [0, 1]), ValueError, "got 1 weights, 1 masks and 2 dims", id="dims-count"),
    pytest.param(([W, W], [M, torch.ones(5)], 0.5, 0), ValueError, "tensor 1: mask has length 5", id="mask-length"),
    pytest.param(([W, W.int()], [M, M], 0.5, 0), TypeError, "tensor 1: weight must be a floating", id="int-weight"),
    pytest.param(([W], [M], 1.5, 0), ValueError, "beta must lie in", id="beta-high"),
    pytest.param(([W], [M], float("nan"), 0), ValueError, "beta must lie in", id="beta-nan"),
    pytest.param(([W, W, W], [M, M, M], 0.5, [0, 0, 4]), IndexError, "tensor 2: dim 4 is out of range", id="dim"),
    pytest.param(([W, W.to("meta")], [M, M], 0.5, 0), ValueError, "tensor 1: mask is on cpu but the tensor is on meta",
                 id="mask-device"),
    pytest.param(([W, W.to("meta")], [M, M.to("meta")], 0.5, 0), ValueError,
                 "tensor 1 is on meta but tensor 0 is on cpu",
                 id="weight-device"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("args,error,message", BAD)
def test_rejects_bad_input_naming_the_tensor(backend, args, error, message):
    with pytest.raises(error, match=message):
        ops.masked_weights(*args, backend=backend)


@pytest.mark.parametrize("args,error,message", [p for p in BAD if p.id in UNSAFE_FOR_KERNELS])
def test_backward_op_rejects_what_its_kernel_cannot_run(args, error, message):
    weights, masks, beta, dims = args
    dims = [dims] * len(weights) if isinstance(dims, int) else dims
    with pytest.raises(DIRECT_OP_ERRORS, match="masked_weights_backward"):
        torch.ops.lwdvc.masked_weights_backward(weights, masks, beta, dims)


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="masked_weights: unknown backend 'fast'"):
        ops.masked_weights([W], [M], 0.5, 0, backend="fast")


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_matches_cpu(backend, dtype):
    weights, masks, grads, dims = make_list(LIST, dtype, seed=7, requires_grad=False)
    on_gpu = [w.cuda().requires_grad_(True) for w in weights]
    outs = ops.masked_weights(on_gpu, [m.cuda() for m in masks], 0.25, dims, backend=backend)
    got_grads = torch.autograd.grad(outs, on_gpu, [g.cuda() for g in grads])
    on_cpu = [w.clone().requires_grad_(True) for w in weights]
    refs = ops.masked_weights(on_cpu, masks, 0.25, dims, backend="reference")
    ref_grads = torch.autograd.grad(refs, on_cpu, grads)
    torch.testing.assert_close([o.cpu() for o in outs], refs)
    torch.testing.assert_close([g.cpu() for g in got_grads], list(ref_grads))


FALLBACK_SCRIPT = """
import sys
sys.modules["lwdvc_kernels._C"] = None  # the extension cannot be imported
import torch
from lwdvc_kernels import ops
assert ops.EXTENSION is None
ws = [torch.randn(8, 4, 3, 3, requires_grad=True), torch.randn(4, 70, requires_grad=True)]
ms = [torch.tensor([1.0, 0.0] * 4), (torch.arange(70) % 3 > 0).float()]
outs = ops.masked_weights(ws, ms, 0.25, [0, 1])
grads = torch.autograd.grad([outs[1].sum()], ws, allow_unused=True)
assert grads[0] is None
assert torch.equal(outs[0], ws[0] * ms[0].view(-1, 1, 1, 1))
assert torch.equal(grads[1], (ms[1] + 0.25 * (1 - ms[1])).expand(4, 70))
try:
    ops.masked_weights(ws, [ms[0], torch.ones(3)], 0.25, [0, 1])
except ValueError as error:
    assert "tensor 1: mask has length 3" in str(error)
else:
    raise AssertionError("bad mask accepted")
"""


def test_python_fallback_without_the_extension():
    run_without_extension(FALLBACK_SCRIPT)


FALLBACK_FLOAT64_SCRIPT = """
import sys
sys.modules["lwdvc_kernels._C"] = None  # the extension cannot be imported
import torch
from lwdvc_kernels import ops
assert ops.EXTENSION is None
g = torch.Generator().manual_seed(0)
w = torch.randn(6, 70, dtype=torch.float64, generator=g).t()  # strided
m = 0.01 + 0.98 * torch.rand(6, dtype=torch.float64, generator=g)
grad = torch.randn(70, 6, dtype=torch.float64, generator=g)
out = torch.ops.lwdvc.masked_weights([w], [m], 0.3, [1])[0]
back = torch.ops.lwdvc.masked_weights_backward([grad], [m], 0.3, [1])[0]
assert torch.equal(out, w * m), (out - w * m).abs().max()
assert torch.equal(back, grad * (m + 0.3 * (1 - m))), (back - grad * (m + 0.3 * (1 - m))).abs().max()
"""


def test_python_fallback_computes_float64_factors_in_float64():
    run_without_extension(FALLBACK_FLOAT64_SCRIPT)


@pytest.mark.parametrize("sizes", [[5, 0, 5], [0, 7], [7, 0], [0]], ids=str)
def test_empty_tensors_among_others(sizes):
    """An empty tensor between others used to reach the work split with unit length 0 (SIGFPE);
    run in a subprocess so that a crash fails the test instead of pytest."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = f"""
import torch
import lwdvc_kernels.ops
from lwdvc_kernels import ops
ws = [torch.randn(n) for n in {sizes}]
ms = [(torch.arange(n) % 2).float() for n in {sizes}]
for backward in (False, True):
    op = torch.ops.lwdvc.masked_weights_backward if backward else torch.ops.lwdvc.masked_weights
    outs = op(ws, ms, 0.25, [0] * len(ws))
    for w, m, out in zip(ws, ms, outs):
        want = w * (m + 0.25 * (1 - m)) if backward else w * m
        assert out.shape == w.shape and torch.equal(out, want)
print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{root}:{root / 'python'}"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr[-2000:])
