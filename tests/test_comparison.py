"""Paired comparison against the baseline: the interval carries the pairing; McNemar agrees in direction."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import ROOT
from stages.lib.core import params as params_lib
from stages.lib.core.settings import Shape
from stages.lib.report import comparison

PARAMS = params_lib.load(ROOT / "params.yaml")


def _row(variant: str, correct: list[int], size: int = 100) -> dict:
    return {"variant": variant, "correct": correct, "size_bytes": size, "compressed_bytes": size // 2}


def test_identical_predictions_differ_by_exactly_zero():
    base = _row("baseline_float32", [1, 0] * 50)
    same = _row("x", [1, 0] * 50, size=20)
    comparison.compare_to_baseline([base, same], resamples=500, seed=0, confidence=0.95)
    assert same["accuracy_change"] == {"pp": 0.0, "low_pp": 0.0, "high_pp": 0.0, "mcnemar_p": 1.0}
    assert same["size_reduction"] == 5 and same["compressed_reduction"] == 5


def test_a_clear_loss_has_an_interval_below_zero():
    base = _row("baseline_float32", [1] * 100)
    worse = _row("x", [1] * 80 + [0] * 20)
    change = comparison.paired(base, worse, resamples=2000, seed=0, confidence=0.95)
    assert change["pp"] == pytest.approx(-20) and change["high_pp"] < 0 and change["mcnemar_p"] < 1e-4


def test_missing_baseline_is_refused():
    with pytest.raises(ValueError, match="baseline_float32"):
        comparison.compare_to_baseline([_row("x", [1])], resamples=100, seed=0, confidence=0.95)


def _student(name: str, litert: list[int], tflm: list[int]) -> dict:
    return {**_row(f"student_{name}_int8", litert), "model": f"students/{name}", "tflm_correct": tflm}


def test_students_are_compared_on_their_tflite_micro_answers():
    """Where LiteRT's XNNPACK kernels and TFLite Micro disagree, the device (TFLM) decides a student's figures."""
    base = {**_row("baseline_float32", [1] * 100), "model": "baseline"}
    student = _student("b7_64", [1] * 100, [1] * 90 + [0] * 10)
    control = _student("b7_64_labels", [1] * 80 + [0] * 20, [1] * 95 + [0] * 5)
    comparison.compare_to_baseline([base, student, control], resamples=500, seed=0, confidence=0.95)
    assert student["accuracy_change"]["pp"] == 0 and student["tflm_accuracy_change"]["pp"] == pytest.approx(-10)
    assert "tflm_accuracy_change" not in base
    shape = Shape(64, 7, {}, True, 16, 3, None, None)
    shapes = {"b7_64": shape, "b7_64_labels": replace(shape, distill=False)}
    students = replace(PARAMS.students, shapes=shapes, run=("b7_64", "b7_64_labels"))
    (gain,) = comparison.distillation_gains([base, student, control], students, resamples=500, seed=0, confidence=0.95)
    assert (gain["student"], gain["control"]) == ("b7_64", "b7_64_labels")
    assert gain["pp"] == pytest.approx(-5)  # 90 % against 95 % on TFLM; on LiteRT it would be +20
