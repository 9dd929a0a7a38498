"""Metric loggers: a small protocol and JSON-lines / CSV files.

Every training component offers ``metrics() -> dict[str, float]`` per step; a trainer merges them
and calls ``logger.log(step, merged)``. Keys use ``/`` for families (``sparsity/<group>``,
``ald_loss/<layer>``).
"""
from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["MetricsLogger", "JsonlLogger", "CsvLogger", "MultiLogger", "read_metrics"]


@runtime_checkable
class MetricsLogger(Protocol):
    """Anything with ``log(step, metrics)`` and ``close()``."""

    def log(self, step: int, metrics: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # tensors, numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonlLogger:
    """One JSON object per line: ``{"step": step, **metrics}``; flushed every line."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._file = open(self.path, "w", encoding="utf-8")

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items() if k != "step"}}
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


class CsvLogger:
    """CSV with one row per step; columns are the union of all keys seen (the file is rewritten
    when a new key appears, so it is always a valid table)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = ["step"]

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items() if k != "step"}}
        new = [k for k in row if k not in self._columns]
        self._columns += new
        self._rows.append(row)
        if new or len(self._rows) == 1:
            self._write_all()
        else:
            with open(self.path, "a", newline="", encoding="utf-8") as f:
                csv.DictWriter(f, self._columns).writerow(row)

    def _write_all(self) -> None:
        with open(self.path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self._columns)
            writer.writeheader()
            writer.writerows(self._rows)

    def close(self) -> None:
        pass


class MultiLogger:
    """Forwards every call to several loggers."""

    def __init__(self, *loggers: MetricsLogger) -> None:
        self.loggers = list(loggers)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log(step, metrics)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Read a ``.jsonl`` or ``.csv`` metrics file back (numbers as floats, blanks dropped)."""
    path = os.fspath(path)
    rows: list[dict[str, float]] = []
    if path.endswith(".jsonl"):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    rows.append({k: float(v) for k, v in json.loads(line).items()
                                 if isinstance(v, (int, float))})
        return rows
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for record in csv.DictReader(f):
                row = {}
                for k, v in record.items():
                    try:
                        row[k] = float(v)
                    except (TypeError, ValueError):
                        continue
                rows.append(row)
        return rows
    raise ValueError(f"read_metrics: expected a .jsonl or .csv file, got {path!r}")
