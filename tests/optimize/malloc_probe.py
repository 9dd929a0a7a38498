"""Where glibc malloc serves a 64 MiB tensor, and what it does with it once freed.

Run as a script: ``python malloc_probe.py keep|default``. In ``keep`` mode it first calls
``keep_freed_memory()``. It then allocates, touches and frees a 64 MiB tensor (above glibc's
largest mmap threshold, 32 MiB) ``ROUNDS`` times and prints one JSON object: glibc's ``mallinfo2``
counters before the first round and, for every round, with the tensor alive and after its free,
the tensor's address and (for information only) the minor page faults of touching it. Last, it
mallocs and frees a raw ``TRIM_PROBE_BYTES`` block, with nothing in between that could be placed
above it, and reports the counters before and after the free: freeing the top of the heap is
where glibc trims, when its trim threshold (64 MiB at most by default) allows.
``mallinfo2``'s heap counters describe the main arena, which serves this single-threaded process.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import json
import resource
import sys

import torch

TENSOR_BYTES = 64 << 20
ROUNDS = 8
TRIM_PROBE_BYTES = 256 << 20


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (malloc.h, glibc 2.33 and later)."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _libc():
    """The C library with ``mallinfo2``, ``malloc`` and ``free`` typed, or None without mallinfo2."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if getattr(libc, "mallinfo2", None) is None:
        return None
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
    return libc


def _counters(mallinfo2) -> dict[str, int]:
    info = mallinfo2()
    return {"heap": info.arena, "mmapped": info.hblkhd, "heap_free": info.fordblks}


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _round(mallinfo2) -> dict:
    """Allocate, touch and free one tensor; its address and the counters while alive and after."""
    faults = _minor_faults()
    tensor = torch.empty(TENSOR_BYTES // 4, dtype=torch.float32)
    tensor.fill_(1.0)
    faults = _minor_faults() - faults
    address, alive = tensor.data_ptr(), _counters(mallinfo2)
    del tensor
    return {"address": address, "alive": alive, "freed": _counters(mallinfo2),
            "page_faults": faults}


def _raw_block(libc) -> dict:
    """Malloc and free one large block; the counters while it is held and after its free."""
    block = libc.malloc(TRIM_PROBE_BYTES)
    alive = _counters(libc.mallinfo2)
    libc.free(block)
    return {"alive": alive, "freed": _counters(libc.mallinfo2)}


def main(mode: str) -> dict:
    libc = _libc()
    if libc is None:
        return {"mallinfo2": False}
    mallinfo2 = libc.mallinfo2
    accepted = True
    if mode == "keep":
        from lwdvc_kernels.optimization import keep_freed_memory
        accepted = keep_freed_memory()
    before = _counters(mallinfo2)
    rounds = [_round(mallinfo2) for _ in range(ROUNDS)]
    return {"mallinfo2": True, "accepted": accepted, "before": before, "rounds": rounds,
            "raw_block": _raw_block(libc)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
