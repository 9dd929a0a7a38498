"""Benchmark-wide setup: torch threads = cores, large tensors on transparent huge pages, glibc
keeps freed memory, Triton interpreter without a GPU, and a ratio table (every provider against
the group's baseline, measured in this same run) at the end."""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

# torch's CPU allocator puts tensors of >= 2 MiB on transparent huge pages when this is set
# before its first allocation (read once). Measured here, decoder latencies otherwise moved by
# up to 1.8x between processes (TLB misses on 10-30 MB feature maps, depending on where the
# kernel placed them); with huge pages they repeat within a few percent and drop by 20-40%.
# LWDVC_BENCH_HUGE_PAGES=0 measures without.
if os.environ.get("LWDVC_BENCH_HUGE_PAGES", "1") != "0":
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

if not os.path.exists("/dev/nvidia0") and "TRITON_INTERPRET" not in os.environ:
    os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(os.cpu_count() or 1)

# One allocator setting for every benchmark in the session, whatever runs first: glibc keeps
# freed memory instead of page-faulting fresh mmaps on every large tensor (see
# lwdvc_kernels.optimization.keep_freed_memory). LWDVC_BENCH_KEEP_MEMORY=0 measures the default.
if os.environ.get("LWDVC_BENCH_KEEP_MEMORY", "1") != "0":
    from lwdvc_kernels.optimization import keep_freed_memory  # noqa: E402

    keep_freed_memory()

_MEDIANS: dict[str, dict[str, float]] = defaultdict(dict)
_BASELINES: dict[str, str] = {}
_EXTRA: dict[str, dict[str, float]] = defaultdict(dict)


@pytest.fixture
def record_median():
    """Call ``record_median(benchmark, group, provider, baseline=..., **extra)`` after a run;
    ``median=<seconds>`` records a median measured otherwise (e.g. ``interleaved_medians``)."""

    def record(benchmark, group: str, provider: str, baseline: str, median: float | None = None,
               **extra: float) -> None:
        if benchmark.stats is None:  # --benchmark-disable
            return
        _MEDIANS[group][provider] = benchmark.stats.stats.median if median is None else median
        _BASELINES[group] = baseline
        for key, value in extra.items():
            _EXTRA[f"{group}/{provider}"][key] = value

    return record


def pytest_terminal_summary(terminalreporter):
    if not _MEDIANS:
        return
    rows = []
    terminalreporter.section("lwdvc ratios (baseline median / provider median, same run)")
    for group, medians in sorted(_MEDIANS.items()):
        base = medians.get(_BASELINES[group])
        for provider, median in sorted(medians.items()):
            speedup = base / median if base else float("nan")
            extra = _EXTRA.get(f"{group}/{provider}", {})
            extra_text = " ".join(f"{k}={v:.4g}" for k, v in extra.items())
            terminalreporter.write_line(
                f"{group:40s} {provider:28s} median {median * 1e3:9.3f} ms  speed-up x{speedup:6.3f} {extra_text}"
            )
            rows.append({"group": group, "provider": provider, "median_s": median, "speedup": speedup, **extra})
    out = Path(os.environ.get("LWDVC_BENCH_JSON", ".benchmarks/lwdvc_ratios.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    terminalreporter.write_line(f"written to {out}")
