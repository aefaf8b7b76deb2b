"""Verdicts have three outcomes decided by intervals, one claim per row, thresholds translated to our baseline."""

from __future__ import annotations

import pytest

from conftest import ROOT
from stages.lib.core import params as params_lib
from stages.lib.report import comparison, verdicts

PARAMS = params_lib.load(ROOT / "params.yaml")


def test_non_inferiority_has_three_outcomes():
    assert verdicts.costs_little({"low_pp": -1.5, "high_pp": 1.0}, 2) == verdicts.SUPPORTED
    assert verdicts.costs_little({"low_pp": -6.0, "high_pp": -2.5}, 2) == verdicts.NOT_SUPPORTED
    assert verdicts.costs_little({"low_pp": -3.0, "high_pp": 0.5}, 2) == verdicts.INCONCLUSIVE


def test_one_image_does_not_decide_an_accuracy_claim():
    # 313/333 = 93.99 % "is not > 94 %" by a bare comparison; its interval says the test set cannot tell.
    low, high = 0.9094, 0.9598
    assert verdicts.above([low, high], 0.94) == verdicts.INCONCLUSIVE
    assert (
        verdicts.above([0.941, 0.97], 0.94) == verdicts.SUPPORTED
        and verdicts.above([0.90, 0.93], 0.94) == "not supported"
    )


def _speedup(p25: float, median: float) -> dict:
    return {"speedup_vs_float32": {"p25": p25, "median": median, "p75": median + (median - p25)}}


def test_speed_is_judged_on_the_paired_speedups():
    assert verdicts.faster(_speedup(1.9, 2.1), 1.05, 0.75) == verdicts.SUPPORTED
    # A median below the ratio is not faster, whatever the best runs did.
    assert verdicts.faster(_speedup(0.9, 1.02), 1.05, 0.75) == verdicts.NOT_SUPPORTED
    # The median reaches it, a quarter of the pairs do not: inconclusive.
    assert verdicts.faster(_speedup(1.0, 1.1), 1.05, 0.75) == verdicts.INCONCLUSIVE


def test_translated_threshold():
    assert verdicts.translated_accuracy(0.94, 0.96, 0.937) == pytest.approx(0.917)


def _row(
    variant: str, model: str, fmt: str, correct: list[int], latency: float, size: int, sparsity: float = 0.0
) -> dict:
    accuracy = sum(correct) / len(correct)
    return {
        "variant": variant,
        "model": model,
        "format": fmt,
        "sparsity_target": sparsity,
        "correct": correct,
        "accuracy": accuracy,
        "accuracy_ci": [accuracy - 0.03, accuracy + 0.03],
        "kernels": "xnnpack",
        "latency_ms": {"median": latency, "p25": latency * 0.98, "p75": latency * 1.02},
        # As if timed alternately with a 2 ms float32 baseline in one process.
        "float32_latency_ms": {"median": 2.0},
        "speedup_vs_float32": {"p25": 1.96 / latency, "median": 2.0 / latency, "p75": 2.04 / latency, "runs": 50},
        "size_bytes": size,
        "compressed_bytes": size // (3 if sparsity else 1),
    }


def test_each_claim_is_its_own_row_and_follows_the_numbers():
    right = [1] * 300 + [0] * 33
    rows = comparison.compare_to_baseline(
        [
            _row("baseline_float32", "baseline", "float32", right, 2.0, 15_000_000),
            _row("baseline_float16", "baseline", "float16", right, 2.0, 7_500_000),  # no faster: its own row says so
            _row("baseline_int8", "baseline", "int8", right, 1.0, 4_000_000),
            _row("pruned_50_float32", "pruned/0.5", "float32", right, 2.0, 15_000_000, 0.5),
            _row("pruned_80_float32", "pruned/0.8", "float32", [1] * 260 + [0] * 73, 2.0, 15_000_000, 0.8),
        ],
        resamples=2000,
        seed=0,
        confidence=0.95,
    )
    checks = {
        c["claim"]: c["verdict"]
        for c in verdicts.conclusions(rows, PARAMS.report, PARAMS.statistics.confidence, PARAMS.seed)
    }
    assert checks["int8 runs at least 1.05x faster than float32 (LiteRT, this CPU)."] == "supported"
    assert checks["float16 runs at least 1.05x faster than float32 (LiteRT, this CPU)."] == "not supported"
    assert checks["Pruning to 50% costs less than 2 pp accuracy."] == "supported"
    assert checks["Accuracy declines from 50% to 80% sparsity."] == "supported"
    assert checks["Pruned to 50%, dense kernels run no faster (sparse kernels are needed)."] == "supported"
    assert checks["Float16 suits GPUs/NPUs when accuracy is critical."] == verdicts.UNTESTED
