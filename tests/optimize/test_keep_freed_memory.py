"""keep_freed_memory: freed tensors' pages stay with the process (no page faults on reuse)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Allocates, touches and frees a 64 MiB tensor (above glibc's largest mmap threshold) six times
# and prints the minor page faults of the last three rounds (the first rounds settle the heap:
# Python's own small allocations in between may make it grow a second block once).
_PROBE = textwrap.dedent("""
    import resource, sys, torch
    from lwdvc_kernels.optimization import keep_freed_memory
    accepted = keep_freed_memory() if sys.argv[1] == "keep" else True
    def touch():
        t = torch.empty(16 << 20, dtype=torch.float32)
        t.fill_(1.0)
        return t
    faults = 0
    for round in range(6):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = touch()
        faults += (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) if round >= 3 else 0
        del t
    print(accepted, faults)
""")


def _faults(mode: str) -> tuple[bool, int]:
    env_cmd = [sys.executable, "-c", _PROBE, mode]
    out = subprocess.run(env_cmd, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path),
                              "THP_MEM_ALLOC_ENABLE": "0", "OMP_NUM_THREADS": "1"}).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_memory_is_reused_without_page_faults():
    accepted, kept_faults = _faults("keep")
    _, default_faults = _faults("default")
    assert accepted
    # 64 MiB are 16384 pages of 4 KiB: by default they fault in again each round, kept they do not.
    assert default_faults > 3 * 8000, f"the probe did not see the default's page faults ({default_faults})"
    assert kept_faults < 200, f"freed memory went back to the system: {kept_faults} page faults on reuse"
