"""Metrics per step, loggers and the training-curve plot."""
from __future__ import annotations

import pytest

from lwdvc.prune import CsvLogger, JsonlLogger, MetricsLogger, MultiLogger, plot_training_curves, read_metrics

from .training import finetune


@pytest.fixture(scope="module")
def history():
    _, hist, _ = finetune("gd", 0.5, steps=12)
    return hist


def test_metrics_have_the_documented_keys(history):
    row = history[-1]
    for key in ("step", "target", "target_now", "mac_reduction", "macs", "dense_macs", "beta",
                "mask_flips", "mask_flips_total", "kept_channels", "prunable_channels"):
        assert key in row
    sparsity = {k: v for k, v in row.items() if k.startswith("sparsity/")}
    assert sparsity and all(0.0 <= v < 1.0 for v in sparsity.values())
    assert any(k.startswith("sparsity/refiner/") for k in sparsity)
    assert row["mask_flips_total"] == sum(h["mask_flips"] for h in history)
    assert row["macs"] == pytest.approx((1 - row["mac_reduction"]) * row["dense_macs"], abs=1)


def test_loggers_round_trip(tmp_path, history):
    jsonl, csv = JsonlLogger(tmp_path / "m.jsonl"), CsvLogger(tmp_path / "m.csv")
    logger = MultiLogger(jsonl, csv)
    assert isinstance(jsonl, MetricsLogger) and isinstance(logger, MetricsLogger)
    for i, row in enumerate(history):
        extra = {"ald_loss/layer": 0.1 * i} if i >= 5 else {}  # a key that appears later
        logger.log(i, {**row, **extra})
    logger.close()
    for path in (tmp_path / "m.jsonl", tmp_path / "m.csv"):
        rows = read_metrics(path)
        assert len(rows) == len(history)
        assert rows[-1]["mac_reduction"] == pytest.approx(history[-1]["mac_reduction"])
        assert rows[7]["ald_loss/layer"] == pytest.approx(0.7)
        assert "ald_loss/layer" not in rows[0]
    with pytest.raises(ValueError):
        read_metrics(tmp_path / "m.txt")


def test_plot_writes_a_png(tmp_path, history):
    path = plot_training_curves({"gd": history, "copy": history[:6]}, tmp_path / "sub" / "curves.png",
                                title="test")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        plot_training_curves([], tmp_path / "x.png")


def test_run_comparison_plot_has_one_line_per_run(tmp_path):
    from lwdvc.prune import plot_run_comparison

    rows = [{"step": s, "loss": 10.0 / s, "mse": 0.1 / s, "mac_reduction": min(0.65, s / 10), "mask_flips": s % 3}
            for s in range(1, 31)]
    path = plot_run_comparison({"STE": rows, "GD": rows[:20]}, tmp_path / "cmp.png", title="t")
    assert (tmp_path / "cmp.png").stat().st_size > 1000 and path.endswith("cmp.png")
    with pytest.raises(ValueError, match="no metric rows"):
        plot_run_comparison({"STE": []}, tmp_path / "none.png")
