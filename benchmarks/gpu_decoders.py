"""Whole decoders at 1920x1088 on one GPU: dense eager (cuDNN) vs compacted eager vs optimised vs torch.compile.

DCVC, DCVC-HEM and FVC decoders at ``REDUCTION`` (65 %) fewer MACs (``optimize_cases.decoder``:
synthetic masks, every decoder module of one P-frame), inputs of a 1920x1080 frame padded to
1920x1088, in float16 and bfloat16. Variants (``optimize_cases.runner`` providers): dense and
compacted eager under autocast (cuDNN convolutions, ``torch.backends.cudnn.benchmark`` on),
the optimised compacted modules (``lwdvc_kernels.optimize``: fused CUDA kernels), and
``torch.compile`` of the compacted modules (inductor, float16) as the peer. The variants of a
codec are timed in turns (``interleaved_medians``) after each has run once untimed (compiles,
cuDNN autotuning); every output must be finite. The peer, whose compiles take longest, runs
after every codec's other variants, timed in turns with dense eager float16 and the optimised
float16 decoder again.

Per codec: median latency of each variant, speed-up against dense eager float16, MAC ratio
(dense / that variant's MACs), speed-up efficiency (speed-up / MAC ratio), and the target: the
optimised float16 decoder at least ``TARGET_SPEEDUP`` x faster than dense eager float16 with an
efficiency of at least ``TARGET_EFFICIENCY``.

``python -m benchmarks.gpu_decoders --out FILE [--deadline-s S] [--rounds R] [--codecs ...]``
appends one JSON line per codec as it finishes, and the codec's line again with the peer's row;
once ``S`` seconds have passed it starts nothing new and appends a ``bench-stopped`` line (the
last line of a codec is its result).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from benchmarks.interleaved import interleaved_medians
from benchmarks.optimize_cases import CODECS, FRAME_1080P, REDUCTION, decoder, macs, runner

MAIN = ("dense-eager-fp16", "dense-eager-bf16", "compacted-eager-fp16", "compacted-eager-bf16",
        "compacted-opt-fp16", "compacted-opt-bf16")
PEER = "compacted-compile-fp16"
PROVIDERS = (*MAIN, PEER)
BASELINE = "dense-eager-fp16"
TARGET_PROVIDER = "compacted-opt-fp16"
TARGET_SPEEDUP, TARGET_EFFICIENCY = 2.0, 0.8
NOT_RUN = "not run: stopped at the time limit"


def all_finite(outputs) -> bool:
    """True when every floating tensor in ``outputs`` (nested tuples, lists, dicts) is finite."""
    if isinstance(outputs, torch.Tensor):
        return not outputs.is_floating_point() or bool(torch.isfinite(outputs).all())
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return all(all_finite(o) for o in outputs)
    return True


def target(variants: dict[str, dict]) -> dict:
    """The target against the measurement: ``{"speedup", "efficiency", "met"}`` of ``TARGET_PROVIDER``
    (``met`` None when it was not measured)."""
    row = variants.get(TARGET_PROVIDER, {})
    if "speedup_vs_dense_fp16" not in row:
        return {"provider": TARGET_PROVIDER, "speedup": None, "efficiency": None, "met": None}
    speedup, efficiency = row["speedup_vs_dense_fp16"], row["efficiency"]
    return {"provider": TARGET_PROVIDER, "speedup": speedup, "efficiency": efficiency,
            "met": speedup >= TARGET_SPEEDUP and efficiency >= TARGET_EFFICIENCY}


def time_variants(codec: str, providers: tuple[str, ...], mac_ratio: float, rounds: int, deadline: float,
                  reserve_s: float) -> tuple[dict[str, dict], int | None, bool]:
    """Prepares ``providers`` (one untimed call each: optimise, compile, cuDNN autotuning) until
    ``reserve_s`` before ``deadline`` (``time.monotonic()``), then times the prepared ones in turns,
    in as many rounds as fit (at most ``rounds``, at least 3).

    Returns ({provider: row}, rounds timed or None, whether something was left out for time). A
    row has ``median_ms``, ``mac_ratio`` (dense / its MACs), ``speedup_vs_dense_fp16`` and
    ``efficiency`` (when ``BASELINE`` was timed too), ``first_call_s`` and ``finite``; or ``error``.
    """
    label, height, width = FRAME_1080P
    rows: dict[str, dict] = {p: {} for p in providers}
    steps, stopped = {}, False
    for provider in providers:
        if time.monotonic() > deadline - reserve_s:
            stopped = True
            rows[provider]["error"] = NOT_RUN
            continue
        first = time.monotonic()
        try:
            step = runner(codec, height, width, provider, device="cuda")
            finite = all_finite(step())
        except Exception as exc:  # one variant failing (e.g. the peer's compiler) leaves the others
            rows[provider]["error"] = f"{type(exc).__name__}: {exc}"[:500]
            continue
        rows[provider].update(first_call_s=time.monotonic() - first, finite=finite)
        steps[provider] = step
    if not steps:
        return rows, None, stopped
    one_round = time.monotonic()
    for step in steps.values():
        step()
    one_round = time.monotonic() - one_round
    fit = int((deadline - time.monotonic()) / max(one_round, 1e-6)) - 1
    if fit < 3:
        return rows, None, True
    medians = interleaved_medians(steps, min(rounds, fit), warmup_rounds=0)
    base = medians.get(BASELINE)
    for provider, median in medians.items():
        ratio = mac_ratio if provider.startswith("compacted") else 1.0
        rows[provider].update(median_ms=median * 1e3, mac_ratio=ratio)
        if base is not None:
            rows[provider].update(speedup_vs_dense_fp16=base / median, efficiency=base / median / ratio)
    return rows, min(rounds, fit), stopped or fit < rounds


def bench_codec(codec: str, rounds: int, deadline: float, reserve_s: float = 15.0) -> dict:
    """One codec's record: its MACs and the ``MAIN`` variants timed in turns (``time_variants``);
    the ``PEER`` row is filled later by :func:`bench_peer`. ``"stopped": True`` when something was
    left out for time."""
    label, height, width = FRAME_1080P
    start = time.monotonic()
    modules = decoder(codec, height, width)
    dense_macs, compacted_macs = macs(codec, height, width, "dense"), macs(codec, height, width, "compacted")
    record = {"kind": "bench-codec", "codec": codec, "frame": label, "modules": [m.name for m in modules],
              "dense_gmacs": dense_macs / 1e9, "compacted_gmacs": compacted_macs / 1e9,
              "mac_ratio": dense_macs / compacted_macs, "build_s": time.monotonic() - start}
    rows, record["rounds"], record["stopped"] = time_variants(codec, MAIN, record["mac_ratio"], rounds, deadline,
                                                              reserve_s)
    record["variants"] = {**rows, PEER: {"error": NOT_RUN}}
    record["target"] = target(record["variants"])
    record["seconds"] = time.monotonic() - start
    torch.cuda.empty_cache()
    return record


def bench_peer(record: dict, rounds: int, deadline: float, reserve_s: float = 15.0) -> dict:
    """Times ``PEER`` (torch.compile) for a codec measured by :func:`bench_codec`, in turns with
    ``BASELINE`` and ``TARGET_PROVIDER`` again (its speed-up comes from this same run); updates
    ``record`` and returns it."""
    start = time.monotonic()
    providers = (BASELINE, TARGET_PROVIDER, PEER)
    rows, peer_rounds, stopped = time_variants(record["codec"], providers, record["mac_ratio"], rounds, deadline,
                                               reserve_s)
    record["variants"][PEER] = {**rows[PEER], "timed_with": [BASELINE, TARGET_PROVIDER]}
    record["peer_run"] = {"rounds": peer_rounds, "variants": {p: rows[p] for p in providers[:2]}}
    record["stopped"] = record["stopped"] or stopped
    record["seconds"] += time.monotonic() - start
    torch.cuda.empty_cache()
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_decoders")
    parser.add_argument("--out", type=Path, required=True, help="JSON lines file to append results to")
    parser.add_argument("--deadline-s", type=float, default=math.inf, help="start nothing new after this")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls per variant (fewer if time is short)")
    parser.add_argument("--codecs", nargs="+", choices=CODECS, default=list(CODECS))
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.deadline_s

    def emit(record: dict) -> None:
        with args.out.open("a") as f:
            f.write(json.dumps(record) + "\n")

    if not torch.cuda.is_available():
        emit({"kind": "bench-setup", "error": "no CUDA device"})
        return 1
    torch.backends.cudnn.benchmark = True
    emit({"kind": "bench-setup", "frame": FRAME_1080P[0], "reduction": REDUCTION, "providers": list(PROVIDERS),
          "baseline": BASELINE, "cudnn": torch.backends.cudnn.version(), "cudnn_benchmark": True,
          "target": {"provider": TARGET_PROVIDER, "speedup": TARGET_SPEEDUP, "efficiency": TARGET_EFFICIENCY}})
    measured = []
    for codec in args.codecs:  # the main variants of every codec first, the peer after
        if time.monotonic() > deadline:
            emit({"kind": "bench-stopped", "at": codec})
            return 0
        record = bench_codec(codec, args.rounds, deadline)
        emit(record)
        if record["stopped"]:
            emit({"kind": "bench-stopped", "at": codec})
            return 0
        measured.append(record)
    for record in measured:
        if time.monotonic() > deadline - 15.0:
            emit({"kind": "bench-stopped", "at": f"{record['codec']} {PEER}"})
            return 0
        emit(bench_peer(record, args.rounds, deadline))  # the codec's record again, with the peer's row
        if record["stopped"]:
            emit({"kind": "bench-stopped", "at": f"{record['codec']} {PEER}"})
            return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
