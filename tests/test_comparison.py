"""Paired comparison against the baseline: the interval carries the pairing; McNemar agrees in direction."""

from __future__ import annotations

import pytest

from stages.lib import comparison


def _row(variant: str, correct: list[int], size: int = 100) -> dict:
    return {"variant": variant, "correct": correct, "size_bytes": size, "compressed_bytes": size // 2}


def test_identical_predictions_differ_by_exactly_zero():
    base = _row("baseline_float32", [1, 0] * 50)
    same = _row("x", [1, 0] * 50, size=20)
    comparison.compare_to_baseline([base, same], resamples=500, seed=0)
    assert same["accuracy_change"] == {"pp": 0.0, "low_pp": 0.0, "high_pp": 0.0, "mcnemar_p": 1.0}
    assert same["size_reduction"] == 5 and same["compressed_reduction"] == 5


def test_a_clear_loss_has_an_interval_below_zero():
    base = _row("baseline_float32", [1] * 100)
    worse = _row("x", [1] * 80 + [0] * 20)
    change = comparison.paired(base, worse, resamples=2000, seed=0)
    assert change["pp"] == pytest.approx(-20) and change["high_pp"] < 0 and change["mcnemar_p"] < 1e-4


def test_missing_baseline_is_refused():
    with pytest.raises(ValueError, match="baseline_float32"):
        comparison.compare_to_baseline([_row("x", [1])], resamples=100, seed=0)
