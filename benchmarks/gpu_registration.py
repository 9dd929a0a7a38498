"""Which ``torch.ops.lwdvc.*`` ops have a compiled CUDA kernel, against the ones the sources give one.

Expected: every op named in a ``TORCH_LIBRARY_IMPL(lwdvc, CUDA, m)`` block of
``csrc/ops/cuda/*.cu``, ``m.impl("<op>", ...)`` directly or through a registration macro
defined under ``csrc/`` (e.g. ``LWDVC_REGISTER_MASKED_WEIGHT_OPS``). Found: every op of the
``lwdvc`` namespace whose CUDA dispatch key has a kernel
(``torch._C._dispatch_has_kernel_for_dispatch_key``) that is compiled, i.e. not one of the
Python kernels ``lwdvc_kernels.ops._register`` fills in for devices without a compiled one
(``torch._C._dispatch_dump`` names the file that registered it: a ``.py`` file for those).

Needs no GPU, only the installed package. ``python -m benchmarks.gpu_registration --out FILE``
writes the result as one JSON line (the form ``benchmarks.gpu_check`` runs it in).
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"

_IMPL = re.compile(r'\.impl\(\s*"(\w+)"')
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(", re.MULTILINE)
_CUDA_BLOCK = re.compile(r"TORCH_LIBRARY_IMPL\(\s*lwdvc\s*,\s*CUDA\s*,\s*\w+\s*\)\s*\{")
_REGISTERED_AT = re.compile(r"^CUDA: registered at (\S+?):\d+", re.MULTILINE)


def _macro_impls(csrc: Path) -> dict[str, set[str]]:
    """``{macro name: op names its body registers with .impl}`` over every header under ``csrc``."""
    macros: dict[str, set[str]] = {}
    for header in sorted(csrc.rglob("*.h")):
        text = header.read_text()
        for match in _DEFINE.finditer(text):
            body, end = [], match.start()
            for line in text[end:].splitlines():  # the #define line and its continuation lines
                body.append(line)
                if not line.rstrip().endswith("\\"):
                    break
            names = set(_IMPL.findall("\n".join(body)))
            if names:
                macros[match.group(1)] = names
    return macros


def _block(text: str, start: int) -> str:
    """The text from ``start`` (just after an opening brace) to its matching closing brace."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def expected_cuda_ops(csrc: Path = CSRC) -> list[str] | None:
    """Sorted op names that ``csrc/ops/cuda/*.cu`` registers for the CUDA key; None without sources."""
    cuda_dir = csrc / "ops" / "cuda"
    if not cuda_dir.is_dir():
        return None
    macros = _macro_impls(csrc)
    names: set[str] = set()
    for source in sorted(cuda_dir.glob("*.cu")):
        text = source.read_text()
        for match in _CUDA_BLOCK.finditer(text):
            block = _block(text, match.end())
            names.update(_IMPL.findall(block))
            for macro, impls in macros.items():
                if re.search(rf"\b{macro}\s*\(", block):
                    names.update(impls)
    return sorted(names)


def cuda_kernel_of(qualname: str) -> tuple[str, str | None]:
    """(kind, the file that registered it) of an op's CUDA key; kind ``"compiled"``, ``"python"``,
    ``"none"``, or ``"unknown"`` when the dispatcher's dump does not say (counted as not compiled)."""
    import torch

    if not torch._C._dispatch_has_kernel_for_dispatch_key(qualname, "CUDA"):
        return "none", None
    match = _REGISTERED_AT.search(torch._C._dispatch_dump(qualname))
    if match is None:
        return "unknown", None
    where = match.group(1)
    return ("python" if where.endswith(".py") else "compiled"), where


def check_registration(csrc: Path = CSRC, gpu_present: bool | None = None) -> dict:
    """The registration result (JSON-ready).

    Status ``failed`` when the extension was built with CUDA and an expected op has no compiled
    CUDA kernel, or when a GPU and a CUDA build of torch are present but the extension was built
    without its CUDA kernels; ``passed`` otherwise (``not applicable`` without the extension).
    """
    import torch

    from lwdvc_kernels import ops
    from lwdvc_kernels.ops.registry import OPS

    if gpu_present is None:
        gpu_present = torch.cuda.is_available()
    try:
        names = sorted(n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("lwdvc::"))
    except AttributeError:  # older torch: the package's own table
        names = sorted(spec.name for spec in OPS)
    rows = []
    for name in names:
        kind, where = cuda_kernel_of(f"lwdvc::{name}")
        rows.append({"op": name, "cuda_kernel": kind, "registered_at": where})
    compiled = {r["op"] for r in rows if r["cuda_kernel"] == "compiled"}
    expected = expected_cuda_ops(csrc)
    built_with_cuda = ops.with_cuda_kernels()
    missing = sorted(set(expected or []) - compiled)
    result = {
        "extension_loaded": ops.EXTENSION is not None,
        "extension_error": ops.EXTENSION_ERROR,
        "built_with_cuda": built_with_cuda,
        "cuda_archs": getattr(ops.EXTENSION, "cuda_archs", None),
        "torch_cuda": torch.version.cuda,
        "ops": rows,
        "expected": expected,
        "expected_from": "csrc/ops/cuda/*.cu" if expected is not None else None,
        "compiled": sorted(compiled),
        "missing": missing if built_with_cuda else [],
        "unexpected": sorted(compiled - set(expected)) if expected is not None else [],
    }
    if ops.EXTENSION is None:
        status, note = "not applicable", f"extension not loaded ({ops.EXTENSION_ERROR})"
    elif not built_with_cuda:
        note = "the extension was built without its CUDA kernels"
        status = "failed" if gpu_present and torch.version.cuda else "not applicable"
    elif expected is None:
        status, note = "passed", "csrc/ not found: expected list unknown, compiled CUDA kernels listed"
    elif missing:
        status, note = "failed", f"no compiled CUDA kernel for {', '.join(missing)}"
    else:
        status, note = "passed", f"all {len(expected)} expected ops have a compiled CUDA kernel"
    result.update(status=status, note=note)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_registration")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file to append the result to")
    args = parser.parse_args(argv)
    with args.out.open("a") as f:
        f.write(json.dumps({"kind": "registration", **check_registration()}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
