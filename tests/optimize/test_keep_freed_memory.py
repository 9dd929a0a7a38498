"""keep_freed_memory: freed tensors stay in glibc's heap and are reused at the same address.

The checks read glibc's own bookkeeping (``mallinfo2``) in a fresh process (see
``malloc_probe.py``), so they hold on any host: they do not depend on whether the kernel reclaims
idle pages on its own. Page faults on reuse are recorded for information only.
"""
from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from tests.optimize.malloc_probe import ROUNDS, TENSOR_BYTES, TRIM_PROBE_BYTES

PROBE = pathlib.Path(__file__).with_name("malloc_probe.py")
SETTLE_ROUNDS = 3

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")


def _probe(mode: str) -> dict:
    """Run the probe in a fresh process (mallopt settings last for the whole process)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
           "THP_MEM_ALLOC_ENABLE": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(PROBE), mode], capture_output=True, text=True,
                            check=True, env=env)
    report = json.loads(result.stdout)
    if not report["mallinfo2"]:
        pytest.skip("the C library has no mallinfo2 (glibc 2.33 or later)")
    return report


def _rounds(report: dict, counter: str, start: str, end: str) -> list[int]:
    """How much ``counter`` grew from ``start`` to ``end`` (each a phase of a round), per round."""
    return [r[end][counter] - (report["before"] if start == "before" else r[start])[counter]
            for r in report["rounds"]]


def _record_page_faults(record_property, report: dict) -> None:
    """The page faults of touching the last round's tensor: for information, never asserted (the
    host kernel may reclaim idle pages of its own accord)."""
    record_property("last_round_page_faults", report["rounds"][-1]["page_faults"])


def test_kept_tensor_comes_from_the_heap_stays_there_and_is_reused(record_property):
    report = _probe("keep")
    _record_page_faults(record_property, report)
    assert report["accepted"], "glibc refused the mallopt settings"
    assert max(_rounds(report, "mmapped", "before", "alive")) < TENSOR_BYTES // 2, \
        f"a 64 MiB tensor was mmap'd, not taken from the heap: {report}"
    assert _rounds(report, "heap", "alive", "freed") == [0] * ROUNDS, \
        f"the heap was trimmed when a tensor was freed: {report}"
    raw_block = report["raw_block"]
    assert raw_block["freed"]["heap"] == raw_block["alive"]["heap"], \
        f"the heap was trimmed when the {TRIM_PROBE_BYTES >> 20} MiB block at its top was freed: {report}"
    assert min(_rounds(report, "heap_free", "alive", "freed")) >= TENSOR_BYTES, \
        f"a freed tensor's block is not held as free heap memory: {report}"
    # The first rounds settle the heap (Python's and torch's small allocations in between may
    # leave a freed block just too small for the next aligned request once); after that every
    # allocation reuses a freed block and the heap stops growing.
    settled = report["rounds"][SETTLE_ROUNDS:]
    earlier_addresses = {r["address"] for r in report["rounds"][:SETTLE_ROUNDS]}
    assert all(r["address"] in earlier_addresses for r in settled), \
        f"an allocation of the same size did not reuse a freed block: {report}"
    settled_heap = report["rounds"][SETTLE_ROUNDS - 1]["alive"]["heap"]
    assert all(r["alive"]["heap"] == settled_heap for r in settled), \
        f"the heap kept growing instead of reusing freed blocks: {report}"


def test_by_default_the_tensor_is_mmapped_and_unmapped_on_free(record_property):
    """The opposite in default mode: this shows the probe sees what keep_freed_memory changes."""
    report = _probe("default")
    _record_page_faults(record_property, report)
    assert min(_rounds(report, "mmapped", "before", "alive")) >= TENSOR_BYTES, \
        f"by default glibc should mmap a 64 MiB tensor: {report}"
    assert min(_rounds(report, "mmapped", "freed", "alive")) >= TENSOR_BYTES, \
        f"by default glibc should unmap a freed 64 MiB tensor: {report}"
    raw_block = report["raw_block"]
    assert raw_block["alive"]["mmapped"] - raw_block["freed"]["mmapped"] >= TRIM_PROBE_BYTES, \
        f"by default glibc should mmap and unmap the {TRIM_PROBE_BYTES >> 20} MiB block: {report}"
