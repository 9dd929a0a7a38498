"""``python -m benchmarks.gpu_check [--out DIR]``: proves the GPU paths of the installed package on one GPU.

Parts, each in its own subprocess with its own time limit (stopped there and recorded as
"stopped at the time limit"):

1. ``registration`` (no GPU needed): every op that ``csrc/ops/cuda/*.cu`` registers for the CUDA
   key has a compiled CUDA kernel (:mod:`benchmarks.gpu_registration`).
2. ``cuda-tests``: ``python -m pytest -m cuda -q tests``, pass / fail / skip counts.
3. ``triton``: every Triton kernel compiled (``TRITON_INTERPRET`` removed) on CUDA tensors
   against its PyTorch reference (:mod:`benchmarks.gpu_triton`).
4. ``benchmarks``: DCVC, DCVC-HEM and FVC decoders at 1920x1088 and 65 % fewer MACs, dense
   eager cuDNN vs compacted eager vs optimised vs ``torch.compile``, fp16 and bf16
   (:mod:`benchmarks.gpu_decoders`).

Without a CUDA device only part 1 runs and the report says the GPU speed was not measured.
Writes ``gpu_check.json`` and ``gpu_check.md`` into ``--out`` (atomically). Exit status 1 when
something that ran failed (a missing CUDA kernel on a CUDA build, failing CUDA tests, a Triton
mismatch, an optimised decoder that errors or gives non-finite output), 2 for bad arguments,
else 0. Builds nothing: it runs what is installed.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("registration", "cuda-tests", "triton", "benchmarks")
DEFAULT_LIMITS_S = {"registration": 20.0, "cuda-tests": 100.0, "triton": 60.0, "benchmarks": 240.0}  # 7 min
STOPPED = "stopped at the time limit"
OUTPUT_TAIL = 4000  # characters of a part's output kept in the report


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(message)


def _parts(text: str) -> list[str]:
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown part {', '.join(unknown) or repr(text)}; parts: {', '.join(PARTS)}")
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _rounds(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(prog="python -m benchmarks.gpu_check",
                     description="Prove the GPU paths of the installed package on one GPU (see module doc).")
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="report directory (default ./gpu-check)")
    parser.add_argument("--parts", type=_parts, default=list(PARTS),
                        help=f"comma-separated parts to run (default all: {','.join(PARTS)})")
    for part in PARTS:
        parser.add_argument(f"--{part}-limit", type=_seconds, default=DEFAULT_LIMITS_S[part], metavar="S",
                            dest=f"limit_{part.replace('-', '_')}",
                            help=f"time limit of the {part} part in seconds (default {DEFAULT_LIMITS_S[part]:g})")
    parser.add_argument("--rounds", type=_rounds, default=20, help="timed calls per decoder variant (default 20)")
    return parser.parse_args(argv)


def prepare_out(out: Path) -> Path:
    """The report directory, created if needed. Raises UsageError when it cannot be one."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: directory is not writable")
    return out


def subprocess_env() -> dict[str, str]:
    """This process's environment without ``TRITON_INTERPRET`` (the GPU parts run compiled kernels)."""
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    return env


def run_subprocess(args: list[str], limit_s: float, workdir: Path) -> tuple[int | None, str, float]:
    """Runs ``python <args>`` in the repository root, its process group killed at ``limit_s``.

    Returns (exit status, or None when stopped at the time limit; the last ``OUTPUT_TAIL``
    characters of its stdout + stderr; seconds it ran).
    """
    log = workdir / f"output-{time.monotonic_ns()}.txt"
    start = time.monotonic()
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=subprocess_env(), stdout=sink,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            rc = None
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return rc, log.read_text(errors="replace")[-OUTPUT_TAIL:], time.monotonic() - start


def read_records(path: Path) -> list[dict]:
    """The JSON lines a part wrote (a line cut off by the time limit is dropped)."""
    records = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return records


def part_registration(limit_s: float, workdir: Path) -> dict:
    records_path = workdir / "registration.jsonl"
    rc, output, seconds = run_subprocess(["-m", "benchmarks.gpu_registration", "--out", str(records_path)],
                                         limit_s, workdir)
    part = {"time_limit_s": limit_s, "seconds": seconds}
    records = [r for r in read_records(records_path) if r.get("kind") == "registration"]
    if rc is None:
        return {**part, "status": STOPPED, "note": "the registration check did not finish", "output_tail": output}
    if rc != 0 or not records:
        return {**part, "status": "failed", "note": f"the registration check exited with {rc}", "output_tail": output}
    detail = records[-1]
    return {**part, "status": detail["status"], "note": detail["note"], "detail": detail}


_COUNT = re.compile(r"(\d+) (passed|failed|skipped|deselected|errors?|xfailed|xpassed)\b")


def pytest_counts(output: str) -> dict[str, int]:
    """Counts of pytest's final summary line (``3 passed, 1 skipped, 9 deselected in 2.1s``)."""
    for line in reversed(output.splitlines()):
        found = _COUNT.findall(line)
        if found and re.search(r"\bin [\d.]+s\b", line):
            return {("errors" if kind == "error" else kind): int(n) for n, kind in found}
    return {}


def part_cuda_tests(limit_s: float, workdir: Path) -> dict:
    rc, output, seconds = run_subprocess(["-m", "pytest", "-m", "cuda", "-q", "tests"], limit_s, workdir)
    counts = pytest_counts(output)
    part = {"time_limit_s": limit_s, "seconds": seconds, "counts": counts, "output_tail": output}
    if rc is None:
        return {**part, "status": STOPPED, "note": "pytest did not finish"}
    if rc == 5:
        return {**part, "status": "failed", "note": "no test marked cuda was collected"}
    if rc != 0:
        return {**part, "status": "failed", "note": f"pytest exited with {rc}"}
    if not counts:
        return {**part, "status": "failed", "note": "pytest's summary line was not found"}
    if counts.get("passed", 0) == 0:
        return {**part, "status": "failed", "note": "no test passed: every selected test skipped"}
    return {**part, "status": "passed", "note": "pytest passed"}


def part_triton(limit_s: float, workdir: Path) -> dict:
    records_path = workdir / "triton.jsonl"
    rc, output, seconds = run_subprocess(["-m", "benchmarks.gpu_triton", "--out", str(records_path),
                                          "--deadline-s", str(max(1.0, limit_s - 10))], limit_s, workdir)
    records = read_records(records_path)
    cases = [r for r in records if r.get("kind") == "triton"]
    setup = next((r for r in records if r.get("kind") == "triton-setup"), {})
    failed = [f"{c['op']} {c['dtype']}" for c in cases if not c["passed"]]
    stopped = rc is None or any(r.get("kind") == "triton-stopped" for r in records)
    part = {"time_limit_s": limit_s, "seconds": seconds, "setup": setup, "cases": cases, "output_tail": output}
    if failed or setup.get("error") or rc not in (0, None):
        note = f"mismatch or error in {', '.join(failed)}" if failed else setup.get("error") or f"exited with {rc}"
        return {**part, "status": "failed", "note": note + ("; " + STOPPED if stopped else "")}
    if stopped:
        return {**part, "status": STOPPED, "note": f"{len(cases)} cases passed before the limit"}
    return {**part, "status": "passed", "note": f"{len(cases)} cases (op x dtype) within tolerance"}


def part_benchmarks(limit_s: float, workdir: Path, rounds: int) -> dict:
    records_path = workdir / "benchmarks.jsonl"
    rc, output, seconds = run_subprocess(["-m", "benchmarks.gpu_decoders", "--out", str(records_path),
                                          "--deadline-s", str(max(1.0, limit_s - 15)), "--rounds", str(rounds)],
                                         limit_s, workdir)
    records = read_records(records_path)
    codecs = list({r["codec"]: r for r in records if r.get("kind") == "bench-codec"}.values())  # last line each
    setup = next((r for r in records if r.get("kind") == "bench-setup"), {})
    stopped = rc is None or any(r.get("kind") == "bench-stopped" for r in records)
    broken = [f"{c['codec']} {p}" for c in codecs for p, row in c["variants"].items()
              if p.startswith("compacted-opt") and (row.get("finite") is False or
                                                    (row.get("error") and not row["error"].startswith("not run")))]
    part = {"time_limit_s": limit_s, "seconds": seconds, "setup": setup, "codecs": codecs, "output_tail": output}
    if broken or setup.get("error") or rc not in (0, None):
        note = (f"optimised decoder failed: {', '.join(broken)}" if broken else setup.get("error")
                or f"exited with {rc}")
        return {**part, "status": "failed", "note": note}
    timed = sum(c["target"]["met"] is not None for c in codecs)
    peers = sum("median_ms" in c["variants"].get("compacted-compile-fp16", {}) for c in codecs)
    note = f"{timed} codecs timed, the torch.compile peer on {peers}"
    return {**part, "status": STOPPED if stopped else "measured", "note": note}


def run(args: argparse.Namespace, command: str) -> dict:
    """Runs the chosen parts, prints one line per part, returns the report."""
    import torch

    from benchmarks.gpu_report import machine_info

    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    start = time.monotonic()
    gpu = torch.cuda.is_available()
    parts: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        workdir = Path(tmp)
        for name in PARTS:
            limit = getattr(args, f"limit_{name.replace('-', '_')}")
            if name not in args.parts:
                parts[name] = {"status": "not run", "note": "not asked for (--parts)"}
            elif name != "registration" and not gpu:
                parts[name] = {"status": "not run", "note": "no CUDA device"}
            elif name == "registration":
                parts[name] = part_registration(limit, workdir)
            elif name == "cuda-tests":
                parts[name] = part_cuda_tests(limit, workdir)
            elif name == "triton":
                parts[name] = part_triton(limit, workdir)
            else:
                parts[name] = part_benchmarks(limit, workdir, args.rounds)
            took = f" [{parts[name]['seconds']:.1f} s of {limit:g} s]" if "seconds" in parts[name] else ""
            print(f"{name}: {parts[name]['status']} ({parts[name].get('note', '')}){took}", flush=True)
    bench = parts["benchmarks"]
    measured = any("median_ms" in row for codec in bench.get("codecs", []) for row in codec["variants"].values())
    gpu_speed = "measured" if measured else "not measured"
    speed_note = ("" if measured else "no CUDA device: nothing was measured on a GPU" if not gpu else
                  "the decoder benchmarks were not run" if bench["status"] == "not run" else "no decoder was timed")
    failed = [name for name, part in parts.items() if part["status"] == "failed"]
    return {"command": command, "started": started, "seconds": time.monotonic() - start,
            "exit_status": 1 if failed else 0, "failed_parts": failed, "gpu_speed": gpu_speed,
            "gpu_speed_note": speed_note, "machine": machine_info(), "parts": parts}


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        out = prepare_out(args.out)
    except UsageError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    from benchmarks.gpu_report import write_report

    command = "python -m benchmarks.gpu_check " + shlex.join(sys.argv[1:] if argv is None else argv)
    report = run(args, command.strip())
    json_path, md_path = write_report(out, report)
    print(f"GPU speed: {report['gpu_speed']}" + (f" ({report['gpu_speed_note']})" if report["gpu_speed_note"] else ""))
    bench = report["parts"]["benchmarks"]
    goal = bench.get("setup", {}).get("target") or {"speedup": 2.0, "efficiency": 0.8}
    for codec in bench.get("codecs", []):
        t = codec["target"]
        if t["met"] is None:
            print(f"  {codec['codec']}: {t['provider']} not measured")
            continue
        print(f"  {codec['codec']}: {t['provider']} {t['speedup']:.2f}x faster than dense eager fp16, efficiency "
              f"{t['efficiency']:.2f} (target >= {goal['speedup']:g}x and >= {goal['efficiency']:g}): "
              f"{'met' if t['met'] else 'not met'}")
    print(f"wrote {json_path} and {md_path}; exit status {report['exit_status']}")
    return report["exit_status"]


if __name__ == "__main__":
    raise SystemExit(main())
