"""masked_weight: every backend against a float64 oracle, autograd, opcheck, compile, export."""
from __future__ import annotations

import pytest
import torch

from lwdvc_kernels import ops
from tests.ops.helpers import (
    BACKENDS,
    DTYPES,
    TOLERANCE,
    fractional_mask,
    needs_cuda,
    non_contiguous,
    random_mask,
)
from tests.ops.helpers import (
    masked_weight_oracle as oracle,
)

# (shape, dim): conv out channels, transposed-conv out channels, linear in features, 1-D, 5-D.
CASES = [
    ((16, 8, 3, 3), 0),
    ((8, 12, 4, 4), 1),
    ((10, 70), 1),
    ((33,), 0),
    ((4, 6, 2, 3, 3), -3),
    ((3, 5, 130), 1),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,dim", CASES)
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
def test_forward_and_backward_match_oracle(backend, dtype, shape, dim, contiguous):
    g = torch.Generator().manual_seed(hash((shape, dim)) % 2**31)
    weight = torch.randn(shape, generator=g).to(dtype)
    if not contiguous:
        weight = non_contiguous(weight)
        assert not weight.is_contiguous() or weight.dim() == 1
    weight.requires_grad_(True)
    mask = random_mask(weight.size(dim), g)
    grad = torch.randn(shape, generator=g).to(dtype)
    beta = 0.375  # exactly representable in every dtype
    out = ops.masked_weight(weight, mask, beta, dim, backend=backend)
    out.backward(grad)
    want_out, want_grad = oracle(weight.detach(), mask, beta, dim % weight.dim(), grad)
    atol, rtol = TOLERANCE[dtype]
    assert out.dtype == dtype and out.shape == weight.shape
    torch.testing.assert_close(out.double(), want_out, atol=atol, rtol=rtol)
    torch.testing.assert_close(weight.grad.double(), want_grad, atol=atol, rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape,dim", CASES)
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
def test_float64_factor_is_computed_in_float64(backend, shape, dim, contiguous):
    """A float64 tensor is scaled by its factor in float64: a fractional float64 mask and a beta
    that float32 cannot hold give ``weight * mask`` and ``grad * (mask + beta * (1 - mask))`` to
    float64 rounding (a float32 factor is off by about 1e-8 relative)."""
    g = torch.Generator().manual_seed(hash((shape, dim, "float64")) % 2**31)
    weight = torch.randn(shape, dtype=torch.float64, generator=g)
    if not contiguous:
        weight = non_contiguous(weight)
    weight.requires_grad_(True)
    mask = fractional_mask(weight.size(dim), g)
    grad = torch.randn(shape, dtype=torch.float64, generator=g)
    beta = 0.3  # not exact in float32
    out = ops.masked_weight(weight, mask, beta, dim, backend=backend)
    out.backward(grad)
    want_out, want_grad = oracle(weight.detach(), mask, beta, dim % weight.dim(), grad)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, want_out, atol=0.0, rtol=1e-14)
    torch.testing.assert_close(weight.grad, want_grad, atol=0.0, rtol=1e-14)
    # The backward op called directly, as the C++ autograd does.
    if backend == "auto":
        torch.testing.assert_close(torch.ops.lwdvc.masked_weight_backward(grad, mask, beta, dim), want_grad,
                                   atol=0.0, rtol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "strided"])
def test_other_dtypes_keep_the_float32_factor(backend, dtype, contiguous):
    """float32, float16 and bfloat16 tensors are scaled by the factor computed in float32 and
    rounded to their dtype, bit for bit (a fractional mask and beta 0.3 would show any change)."""
    if backend == "triton" and dtype == torch.bfloat16:
        pytest.skip("Triton's interpreter truncates float32 to bfloat16 where torch rounds to nearest")
    g = torch.Generator().manual_seed(5)
    weight = torch.randn(12, 70, generator=g).to(dtype)
    if not contiguous:
        weight = non_contiguous(weight)
    weight.requires_grad_(True)
    mask = fractional_mask(70, g, torch.float32)
    grad = torch.randn(12, 70, generator=g).to(dtype)
    beta = 0.3
    out = ops.masked_weight(weight, mask, beta, 1, backend=backend)
    out.backward(grad)
    scale = mask + beta * (1.0 - mask)  # float32 arithmetic
    assert scale.dtype == torch.float32
    assert torch.equal(out, weight.detach() * mask.to(dtype))
    assert torch.equal(weight.grad, grad * scale.to(dtype))


def test_gradient_decay_scale_follows_the_dtype_rule():
    """The Python factor: float64 for a float64 tensor, float32 for every other dtype."""
    from lwdvc_kernels.ops.reference.masked_weight import gradient_decay_scale

    mask = torch.tensor([0.0, 0.3, 0.7, 1.0], dtype=torch.float64)
    got = gradient_decay_scale(mask, 0.3, torch.float64)
    assert got.dtype == torch.float64 and torch.equal(got, mask + 0.3 * (1.0 - mask))
    m32 = mask.float()
    for dtype in DTYPES:
        got = gradient_decay_scale(mask, 0.3, dtype)
        assert got.dtype == torch.float32 and torch.equal(got, m32 + 0.3 * (1.0 - m32)), dtype
    assert torch.equal(gradient_decay_scale(mask, 0.3), m32 + 0.3 * (1.0 - m32))


@pytest.mark.parametrize("backend", BACKENDS)
def test_beta_endpoints_are_ste_and_plain_masking(backend):
    weight = torch.randn(6, 4, 3, 3, requires_grad=True)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    for beta, expected in ((1.0, torch.ones(6)), (0.0, mask)):
        weight.grad = None
        ops.masked_weight(weight, mask, beta, 0, backend=backend).sum().backward()
        torch.testing.assert_close(weight.grad, expected.view(-1, 1, 1, 1).expand_as(weight))


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_bool_mask_equals_float_mask(backend):
    weight = torch.randn(5, 7)
    mask = torch.tensor([True, False, True, True, False])
    torch.testing.assert_close(
        ops.masked_weight(weight, mask, 0.0, 0, backend=backend),
        ops.masked_weight(weight, mask.float(), 0.0, 0, backend=backend),
    )


def test_mask_gets_no_gradient():
    weight = torch.randn(4, 3, requires_grad=True)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0], requires_grad=True)
    ops.masked_weight(weight, mask, 0.5, 0).sum().backward()
    assert mask.grad is None
    assert weight.grad is not None


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_gradcheck_float64(dim):
    """With beta = 0 the backward is the true derivative; beta > 0 is a surrogate by design."""
    g = torch.Generator().manual_seed(dim)
    weight = torch.randn(4, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    mask = random_mask(weight.size(dim), g).double()
    assert torch.autograd.gradcheck(lambda w: ops.masked_weight(w, mask, 0.0, dim), (weight,))
    assert torch.autograd.gradgradcheck(lambda w: ops.masked_weight(w, mask, 0.0, dim), (weight,))
    # The backward op is linear in its input, so its own derivative is exact for every beta.
    assert torch.autograd.gradcheck(lambda gr: torch.ops.lwdvc.masked_weight_backward(gr, mask, 0.25, dim), (weight,))


def test_opcheck():
    g = torch.Generator().manual_seed(0)
    samples = [
        (torch.randn(8, 4, 3, 3, requires_grad=True), random_mask(8, g), 0.5, 0),
        (torch.randn(4, 8, 2, 2, requires_grad=True), random_mask(8, g), 0.0, 1),
        (torch.randn(6, 10, dtype=torch.float64, requires_grad=True), random_mask(10, g).double(), 1.0, -1),
    ]
    for weight, mask, beta, dim in samples:
        torch.library.opcheck(torch.ops.lwdvc.masked_weight.default, (weight, mask, beta, dim))
        torch.library.opcheck(
            torch.ops.lwdvc.masked_weight_backward.default, (weight.detach().clone().requires_grad_(), mask, beta, dim)
        )


def test_torch_compile_and_export():
    class Masked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(6, 3, 3, 3))
            self.register_buffer("mask", torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0]))

        def forward(self, x):
            w = ops.masked_weight(self.weight, self.mask, 0.5, 0)
            return torch.nn.functional.conv2d(x, w)

    model = Masked()
    x = torch.randn(2, 3, 8, 8)
    eager = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), eager)
    eager.sum().backward()
    eager_grad = model.weight.grad.clone()
    model.weight.grad = None
    compiled(x).sum().backward()
    torch.testing.assert_close(model.weight.grad, eager_grad)
    exported = torch.export.export(model, (x,))
    assert any("lwdvc.masked_weight" in str(node.target) for node in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(x), eager)


def test_cuda_kernel_registered_when_built_with_cuda():
    if ops.EXTENSION is None:
        pytest.skip(f"extension not built: {ops.EXTENSION_ERROR}")
    if torch.version.cuda is None:
        pytest.skip("CPU-only torch: the extension has no CUDA kernels by design")
    # A CUDA build of torch and nvcc are present on every CI machine, so CUDA must be compiled in.
    assert ops.with_cuda_kernels(), "extension was built without its CUDA kernels"
    for name in ("lwdvc::masked_weight", "lwdvc::masked_weight_backward", "lwdvc::masked_weights",
                 "lwdvc::masked_weights_backward", "lwdvc::channel_norm"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA"), name


def test_extension_is_built():
    """The installed package must carry the compiled extension (CI builds it on every run)."""
    assert ops.EXTENSION is not None, ops.EXTENSION_ERROR
    assert torch._C._dispatch_has_kernel_for_dispatch_key("lwdvc::masked_weight", "CPU")


@needs_cuda
@pytest.mark.parametrize("backend", ["auto", "triton"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_matches_cpu(backend, dtype):
    g = torch.Generator().manual_seed(3)
    weight = torch.randn(32, 16, 3, 3, generator=g).to(dtype)
    mask = random_mask(16, g)
    grad = torch.randn_like(weight)
    w_cuda = weight.cuda().requires_grad_(True)
    out = ops.masked_weight(w_cuda, mask.cuda(), 0.25, 1, backend=backend)
    out.backward(grad.cuda())
    w_cpu = weight.clone().requires_grad_(True)
    ref = ops.masked_weight(w_cpu, mask, 0.25, 1, backend="reference")
    ref.backward(grad)
    torch.testing.assert_close(out.cpu(), ref)
    torch.testing.assert_close(w_cuda.grad.cpu(), w_cpu.grad)


@pytest.mark.parametrize("dim", [0, 1])
def test_large_weight_takes_the_streaming_path_and_matches(dim):
    """Outputs of several MiB go through the CPU kernel's non-temporal-store loop."""
    g = torch.Generator().manual_seed(11)
    weight = torch.randn(320, 96, 5, 5, generator=g).requires_grad_(True)  # about 2.9 MiB
    mask = random_mask(weight.size(dim), g)
    grad = torch.randn(weight.shape, generator=g)
    out = ops.masked_weight(weight, mask, 0.25, dim)
    out.backward(grad)
    want_out, want_grad = oracle(weight.detach(), mask, 0.25, dim, grad)
    torch.testing.assert_close(out.double(), want_out, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(weight.grad.double(), want_grad, atol=1e-6, rtol=1e-6)
