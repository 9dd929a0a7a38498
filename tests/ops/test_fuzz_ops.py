"""Fuzzing of every op in the op table (``lwdvc_kernels/ops/registry.py``) through the dispatcher.

Hypothesis draws cases per op: random shapes (zero-size included), layouts (contiguous,
channels_last, transposed, strided views), dtypes (float32, float64, bfloat16, float16, int),
values (NaN, Inf, zeros, large) and int arguments from plausible to overflowing (paddings,
strides, dilations, dims, groups near 2**62 and int64's limits). A case is a plain description;
the tensors are built from it in a worker subprocess, one per batch of cases, so that a crash of a
kernel (a segfault, an abort) fails the test naming the case instead of killing pytest. For each
case the worker runs

* the fake kernel under ``FakeTensorMode`` (the op's Python argument checks, as ``torch.compile``
  sees it), and
* the raw op ``torch.ops.lwdvc.<op>`` on the real tensors (the compiled kernel and its C++
  memory-safety preconditions, or the Python kernel without the extension),

and requires: every error is a ValueError / TypeError / IndexError / RuntimeError with a message;
where the fake kernel accepts the arguments, the eager op does too, with the fake's shapes and
dtypes, and its values equal the Python kernel's (the reference) within the dtype's tolerance, NaN
at the same positions (except the refusals listed in ``EAGER_ONLY_LIMITS``: kernels with fewer
dtypes or instruction sets than the op, whose functional API routes the rest). Values stay in
ranges where the result does not depend on summation order or intermediate precision (no finite
overflow; finite conv weights and GDN parameters). Where the fake kernel refuses, the raw op
may refuse or compute (its C++ layer checks only what keeps it in bounds) but must not crash.

By default each op gets a small derandomised budget (the whole file runs in well under a minute
on one core). For a longer run set ``LWDVC_FUZZ_EXAMPLES`` (cases per op, e.g. 2000) and,
optionally, ``LWDVC_FUZZ_SEED`` (a different random stream each value; default: derandomised)::

    LWDVC_FUZZ_EXAMPLES=2000 python -m pytest -q tests/ops/test_fuzz_ops.py
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lwdvc_kernels.ops.registry import OPS  # noqa: E402

EXAMPLES = int(os.environ.get("LWDVC_FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("LWDVC_FUZZ_SEED")
BATCH = 2000  # cases per worker process
WORKER_TIMEOUT_S = 600
ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("fuzz_worker.py")  # runs the cases; see its docstring

INT64_MAX = 2**63 - 1
FLOAT_DTYPES = ["float32", "float32", "float32", "float64", "bfloat16", "float16"]
DTYPES = FLOAT_DTYPES + ["int32", "bool"]
LAYOUTS = ["contiguous", "contiguous", "channels_last", "transposed", "strided"]
FILLS = ["normal", "normal", "normal", "nan", "inf", "zeros", "large"]

# ---------------------------------------------------------------------------------------------
# Case descriptions (JSON): a tensor is {"t": shape, "dtype", "layout", "fill", "seed"}.


def size(low: int = 0, high: int = 5):
    return st.integers(low, high)


def huge_int():
    """Int arguments beyond any plausible size: they must be refused, never wrap around."""
    return st.sampled_from([-1, 2**31, 2**32 + 1, 2**61, 2**62, 2**62 - 1, INT64_MAX, -(2**63)])


# Each case is drawn either plausible (consistent shapes, floating dtypes, small ints: mostly
# accepted, so values are compared) or adversarial (each argument may be off: a neighbouring
# size, another dtype, a huge int).
def adversarial():
    return st.sampled_from([False, False, True])


def small_or_huge(low: int, high: int, bad: bool):
    return st.one_of(st.integers(low, high), st.integers(low, high), huge_int()) if bad else st.integers(low, high)


@st.composite
def tensor(draw, shape, dtype=None, bad=False):
    if dtype is None or (bad and draw(st.integers(0, 5)) == 0):
        dtype = draw(st.sampled_from(DTYPES if bad else FLOAT_DTYPES))
    return {"t": list(shape), "dtype": dtype, "layout": draw(st.sampled_from(LAYOUTS)),
            "fill": draw(st.sampled_from(FILLS)), "seed": draw(st.integers(0, 2**16))}


def maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def off_by_one(draw, n: int, bad: bool) -> int:
    """n; in an adversarial case sometimes a neighbour (a mismatch the checks must catch)."""
    return draw(st.sampled_from([n] * 4 + [max(n - 1, 0), n + 1])) if bad else n


@st.composite
def masked_weight_case(draw, bad=None):
    bad = draw(adversarial()) if bad is None else bad
    shape = draw(st.lists(size(0, 5), min_size=1, max_size=4))
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    if bad and draw(st.booleans()):
        dim = draw(st.sampled_from([len(shape), -len(shape) - 1, INT64_MAX]))
    channels = shape[dim] if -len(shape) <= dim < len(shape) else 3
    # masks are 0/1 (the mask contract); the kernels compute the factor in float64 for float64
    # tensors, in float32 for the others
    mask = draw(tensor([draw(off_by_one(channels, bad))], dtype=draw(st.sampled_from(["float32", "bool", "float64"])),
                       bad=bad))
    # non-finite masks and betas outside [0, 1] are adversarial: a plausible case stays valid
    mask["fill"] = draw(st.sampled_from(["binary", "binary", "binary", "zeros"]
                                        + (["binary-nan", "binary-inf"] if bad else [])))
    beta = draw(st.sampled_from([0.0, 0.5, 1.0] + ([-1.0, float("nan"), float("inf"), 1e30] if bad else [])))
    return [draw(tensor(shape, bad=bad)), mask, beta, dim]


@st.composite
def masked_weights_case(draw):
    bad = draw(adversarial())
    items = [draw(masked_weight_case(bad)) for _ in range(draw(st.integers(1, 3)))]
    dims = [it[3] for it in items]
    if bad and len(items) > 1 and draw(st.booleans()):
        dims = dims[:-1]  # count mismatch
    return [[it[0] for it in items], [it[1] for it in items], items[0][2], dims]


@st.composite
def channel_norm_case(draw):
    bad = draw(adversarial())
    channels = draw(size(0, 5))
    weights, dims = [], []
    for _ in range(draw(st.integers(1, 3))):
        shape = draw(st.lists(size(0, 4), min_size=0, max_size=3))
        dim = draw(st.integers(0, len(shape)))
        shape.insert(dim, draw(off_by_one(channels, bad)))
        weights.append(draw(tensor(shape, bad=bad)))
        choices = [dim, dim - len(shape)] + ([len(shape), INT64_MAX] if bad else [])
        dims.append(draw(st.sampled_from(choices)))
    return [weights, dims]


@st.composite
def conv_case(draw, narrow=False, deform=False):
    bad = draw(adversarial())
    groups = 1 if (narrow or deform) else draw(st.sampled_from([1, 1, 2, 3] + ([0, INT64_MAX] if bad else [])))
    g = groups if 0 < groups < 8 else 1
    cin = g * draw(size(0 if bad else 1, 4))
    upscale = 1 if (narrow or deform) else draw(st.sampled_from([1, 1, 2] + ([0, 2**32] if bad else [])))
    r = upscale if 0 < upscale < 8 else 1
    cout = g * draw(size(0 if bad else 1, 3 if narrow else 4)) * (r * r if g == 1 else 1)
    if g > 1 and r > 1:
        cout = g * r * r
    kh, kw = draw(size(0 if bad else 1, 3)), draw(size(0 if bad else 1, 3))
    h, w = draw(size(0, 7)), draw(size(0, 7))
    n = draw(size(0, 2))
    dtype = "float32" if narrow and not bad else draw(st.sampled_from(DTYPES if bad else FLOAT_DTYPES))
    stride = [draw(small_or_huge(1, 3, bad)), draw(small_or_huge(1, 3, bad))]
    padding = [draw(small_or_huge(0, 2, bad)), draw(small_or_huge(0, 2, bad))]
    dilation = [1, 1] if narrow else [draw(small_or_huge(1, 2, bad)), draw(small_or_huge(1, 2, bad))]
    if not bad:  # a kernel that fits
        h = max(h, dilation[0] * (kh - 1) + 1 - 2 * padding[0])
        w = max(w, dilation[1] * (kw - 1) + 1 - 2 * padding[1])
    x = draw(tensor([n, draw(off_by_one(cin, bad)), h, w], dtype, bad))
    weight = draw(tensor([cout, draw(off_by_one(cin // g, bad)), kh, kw], dtype, bad))
    # finite weights: whether a NaN weight times a padded zero reaches the output differs between
    # torch's own conv paths (oneDNN skips the padding, im2col multiplies it)
    weight["fill"] = draw(st.sampled_from(["normal", "zeros", "large"]))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    oh, ow = max(min(oh, 9), 0), max(min(ow, 9), 0)
    bias = draw(maybe(tensor([draw(off_by_one(cout, bad))], dtype, bad)))
    activation = draw(st.sampled_from(["none", "relu", "leaky_relu"] + (["gelu"] if bad else [])))
    slope = draw(st.sampled_from([0.1, 0.0, -2.0, 5.0]))  # a NaN slope: oneDNN's post-op and F.leaky_relu differ
    if deform:
        og = draw(st.sampled_from([1, 1, 2] + ([0] if bad else [])))
        sizes = None
        if draw(st.booleans()):
            sizes = draw(st.lists(st.integers(-1 if bad else 0, 4), min_size=og, max_size=og))
            if not bad and og:
                sizes[-1] = max(cin - sum(sizes[:-1]), 0)
                sizes = sizes if sum(sizes) == cin else None
        if sizes is None and og > 0 and cin % og:
            og = 1
        offset = draw(tensor([n, draw(off_by_one(2 * max(og, 1) * kh * kw, bad)), oh, ow], dtype, bad))
        return [x, weight, offset, bias, stride, padding, dilation, groups, og, sizes]
    res_channels = cout // (r * r)
    residual = draw(maybe(tensor([n, draw(off_by_one(res_channels, bad)), oh * r, ow * r], dtype, bad)))
    if narrow:
        return [x, weight, bias, residual, stride, padding, activation, slope]
    return [x, weight, bias, residual, stride, padding, dilation, groups, activation, slope, upscale]


@st.composite
def gdn_case(draw):
    bad = draw(adversarial())
    c = draw(size(0, 5))
    dtype = draw(st.sampled_from(DTYPES if bad else FLOAT_DTYPES))
    x = draw(tensor([draw(size(0, 2)), c, draw(size(0, 5)), draw(size(0, 5))], dtype, bad))
    beta = draw(tensor([draw(off_by_one(c, bad))], dtype, bad))
    gamma = draw(tensor([draw(off_by_one(c, bad)), c], dtype, bad))
    # GDN's parameters are non-negative (else sqrt(beta + gamma x^2) is NaN wherever rounding
    # makes the sum negative, which differs between float16 and float32 arithmetic)
    # and finite (0 * inf in gamma @ x^2 is NaN in the reference, not always in the kernel)
    beta["abs"] = gamma["abs"] = True
    beta["fill"] = draw(st.sampled_from(["normal", "zeros", "large"]))
    gamma["fill"] = draw(st.sampled_from(["normal", "zeros", "large"]))
    return [x, beta, gamma, draw(st.booleans())]


@st.composite
def to_channels_last_case(draw):
    bad = draw(adversarial())
    rank = draw(st.sampled_from([3, 5])) if bad else 4
    shape = draw(st.lists(size(0, 20), min_size=rank, max_size=rank))
    dtypes = [None, "float32", "bfloat16", "float64"] + (["int32"] if bad else [])
    return [draw(tensor(shape, bad=bad)), draw(st.sampled_from(dtypes))]


CASES = {
    "masked_weight": masked_weight_case(),
    "masked_weight_backward": masked_weight_case(),
    "masked_weights": masked_weights_case(),
    "masked_weights_backward": masked_weights_case(),
    "channel_norm": channel_norm_case(),
    "conv2d_epilogue": conv_case(),
    "conv2d_narrow": conv_case(narrow=True),
    "gdn": gdn_case(),
    "to_channels_last": to_channels_last_case(),
    "deform_conv2d": conv_case(deform=True),
}


def test_every_op_of_the_table_is_fuzzed():
    assert sorted(CASES) == sorted(spec.name for spec in OPS)


def draw_cases(op: str, count: int) -> list:
    cases: list = []
    options = dict(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
                   suppress_health_check=list(HealthCheck))
    if SEED is None:
        options["derandomize"] = True

    @settings(**options)
    @given(CASES[op])
    def collect(case):
        cases.append(case)

    if SEED is not None:
        from hypothesis import seed

        collect = seed(int(SEED) * 1000 + sorted(CASES).index(op))(collect)
    # Hypothesis keeps weakly referenced caches, so when the garbage collector runs changes what it
    # draws: without collections during the draw, the cases are the same in every process.
    collecting = gc.isenabled()
    gc.disable()
    try:
        collect()
    finally:
        if collecting:
            gc.enable()
    return cases


def run_worker(cases: list) -> list:
    """Results of ``cases`` ([op, case] pairs) from worker processes; a crashed worker's case is
    reported as such and the remaining cases run in a fresh worker."""
    results: list = []
    while len(results) < len(cases):
        todo = cases[len(results):len(results) + BATCH]
        env = dict(os.environ, OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "python"), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, str(WORKER)], input=json.dumps(todo), capture_output=True, text=True,
                              env=env, timeout=WORKER_TIMEOUT_S)
        done = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        results += done
        if len(done) < len(todo):  # the worker died on todo[len(done)]
            results.append({"fail": f"worker crashed (exit {proc.returncode}): {proc.stderr[-2000:]}"})
    return results


@pytest.fixture(scope="module")
def outcomes() -> dict:
    """{op: [(case, result)]}: every op's cases, run in one batch of worker processes."""
    cases = [[op, case] for op in sorted(CASES) for case in draw_cases(op, EXAMPLES)]
    by_op: dict = {op: [] for op in CASES}
    for (op, case), result in zip(cases, run_worker(cases)):
        by_op[op].append((case, result))
    return by_op


@pytest.mark.parametrize("op", sorted(CASES))
def test_fuzz(op, outcomes):
    failures = [(case, res["fail"]) for case, res in outcomes[op] if "fail" in res]
    assert not failures, f"{len(failures)} of {len(outcomes[op])} cases failed; first: {failures[0]}"
    accepted = sum(res.get("accepted", False) for _, res in outcomes[op])
    assert accepted >= len(outcomes[op]) // 10, f"only {accepted} of {len(outcomes[op])} cases were valid arguments"
