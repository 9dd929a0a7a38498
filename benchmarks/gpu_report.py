"""The GPU check's report: machine facts, the Markdown summary, and atomic JSON / Markdown writes."""
from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path

from lwdvc.checkpoint import write_text_atomic


def machine_info() -> dict:
    """Host, Python, torch (its CUDA and cuDNN), Triton and the GPU (None without a CUDA device)."""
    import importlib.metadata

    import torch

    try:
        triton_version = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton_version = None
    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "capability": f"{props.major}.{props.minor}",
               "memory_gib": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count()}
    return {"host": platform.node(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "triton": triton_version, "gpu": gpu}


def json_ready(value):
    """``value`` with non-finite floats as strings ("inf", "nan"): strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def _fmt(value, spec: str = ".3g") -> str:
    return "-" if value is None else format(value, spec)


def _header(report: dict) -> list[str]:
    m = report["machine"]
    gpu = m["gpu"]
    gpu_text = (f"{gpu['name']} (compute capability {gpu['capability']}, {gpu['memory_gib']} GiB"
                f"{', ' + str(gpu['count']) + ' devices' if gpu['count'] > 1 else ''})") if gpu else "no CUDA device"
    reg = report["parts"]["registration"].get("detail") or {}
    build = ("not loaded" if not reg.get("extension_loaded", True) else
             f"built with CUDA (archs {reg.get('cuda_archs')})" if reg.get("built_with_cuda") else
             "built without CUDA" if reg else "unknown")
    return [
        "# GPU check",
        "",
        f"`{report['command']}`, started {report['started']}, {report['seconds']:.0f} s, "
        f"exit status {report['exit_status']}.",
        "",
        f"- Machine: {m['host']}, {m['cpus']} CPUs, {m['platform']}",
        f"- GPU: {gpu_text}",
        f"- Python {m['python']}, torch {m['torch']} (CUDA {m['torch_cuda']}, cuDNN {m['cudnn']}), "
        f"Triton {m['triton']}, extension {build}",
        f"- **GPU speed: {report['gpu_speed']}**" + (f" ({report['gpu_speed_note']})" if report.get("gpu_speed_note")
                                                     else ""),
        "",
    ]


def _part_title(title: str, part: dict) -> list[str]:
    limit = f", {part['seconds']:.1f} s of the {part['time_limit_s']:g} s limit" if "seconds" in part else ""
    lines = [f"## {title}: {part['status']}", "", f"{part.get('note', '')}{limit}.".lstrip(", "), ""]
    if part.get("output_tail") and part["status"] not in ("passed", "measured", "not run"):
        lines += ["```", part["output_tail"][-2000:].rstrip(), "```", ""]
    return lines


def _registration(part: dict) -> list[str]:
    lines = _part_title("Registration of the CUDA kernels", part)
    detail = part.get("detail")
    if detail:
        lines += ["| op | CUDA kernel | expected (csrc/ops/cuda) | registered at |", "|---|---|---|---|"]
        expected = set(detail.get("expected") or [])
        for row in detail["ops"]:
            lines.append(f"| {row['op']} | {row['cuda_kernel']} | {'yes' if row['op'] in expected else 'no'} "
                         f"| {row['registered_at'] or '-'} |")
        lines += ["", f"Missing: {', '.join(detail['missing']) or 'none'}.", ""]
    return lines


def _cuda_tests(part: dict) -> list[str]:
    lines = _part_title("CUDA tests (`python -m pytest -m cuda -q tests`)", part)
    counts = part.get("counts")
    if counts:
        lines += [", ".join(f"{n} {k}" for k, n in counts.items()) + ".", ""]
    return lines


def _triton(part: dict) -> list[str]:
    lines = _part_title("Triton kernels, compiled, against the PyTorch references", part)
    cases = part.get("cases") or []
    if cases:
        lines += ["| op | dtype | result | checks | max abs error | worst error / tolerance |",
                  "|---|---|---|---:|---:|---:|"]
        for case in cases:
            checks = case.get("checks") or []
            worst = max((c.get("worst_vs_tolerance", math.inf) for c in checks), default=None)
            max_abs = max((c.get("max_abs_error", math.inf) for c in checks), default=None)
            result = "pass" if case["passed"] else f"FAIL {case.get('error', '')}".strip()
            lines.append(f"| {case['op']} | {case['dtype']} | {result} | {len(checks)} | {_fmt(max_abs)} "
                         f"| {_fmt(worst)} |")
        lines.append("")
    return lines


def _benchmarks(part: dict) -> list[str]:
    lines = _part_title("Decoders at 1920x1088, 65 % fewer MACs", part)
    setup = part.get("setup") or {}
    goal = setup.get("target")
    if goal:
        lines += [f"Target: the optimised compacted decoder (`{goal['provider']}`) at least {goal['speedup']:g}x "
                  f"faster than dense eager cuDNN fp16 (`{setup['baseline']}`), speed-up efficiency "
                  f">= {goal['efficiency']:g}. cuDNN {setup.get('cudnn')}, `cudnn.benchmark` on.", ""]
    for codec in part.get("codecs") or []:
        t = codec["target"]
        verdict = "not measured" if t["met"] is None else ("met" if t["met"] else "not met")
        lines += [f"### {codec['codec']}: target {verdict}", "",
                  f"Dense {codec['dense_gmacs']:.1f} GMACs, compacted {codec['compacted_gmacs']:.1f} GMACs "
                  f"(MAC ratio {codec['mac_ratio']:.3f}); {codec.get('rounds', 0)} interleaved rounds"
                  f"{'; stopped at the time limit' if codec['stopped'] else ''}.", "",
                  "| variant | median ms | speed-up vs dense fp16 | MAC ratio | efficiency | note |",
                  "|---|---:|---:|---:|---:|---|"]
        for provider, row in codec["variants"].items():
            note = row.get("error") or ("" if row.get("finite", True) else "non-finite output")
            if row.get("timed_with") and "median_ms" in row:
                note = f"timed in a second run, in turns with {' and '.join(row['timed_with'])}"
            lines.append(f"| {provider} | {_fmt(row.get('median_ms'), '.2f')} "
                         f"| {_fmt(row.get('speedup_vs_dense_fp16'), '.2f')} | {_fmt(row.get('mac_ratio'), '.3f')} "
                         f"| {_fmt(row.get('efficiency'), '.2f')} | {note} |")
        speedup = "-" if t["speedup"] is None else f"{t['speedup']:.2f}x"
        lines += ["", f"Target against the measurement: speed-up {speedup} (target >= "
                      f"{goal['speedup'] if goal else 2:g}x), efficiency {_fmt(t['efficiency'], '.2f')} (target >= "
                      f"{goal['efficiency'] if goal else 0.8:g}): {verdict}.", ""]
    return lines


def markdown(report: dict) -> str:
    """The Markdown summary of a report (as written to gpu_check.json)."""
    parts = report["parts"]
    lines = _header(report)
    lines += _registration(parts["registration"])
    lines += _cuda_tests(parts["cuda-tests"])
    lines += _triton(parts["triton"])
    lines += _benchmarks(parts["benchmarks"])
    return "\n".join(lines).rstrip() + "\n"


def write_report(out: Path, report: dict) -> tuple[Path, Path]:
    """Writes ``gpu_check.json`` and ``gpu_check.md`` into ``out`` atomically; returns their paths."""
    json_path, md_path = out / "gpu_check.json", out / "gpu_check.md"
    write_text_atomic(json_path, json.dumps(json_ready(report), indent=2, allow_nan=False) + "\n")
    write_text_atomic(md_path, markdown(report))
    return json_path, md_path
