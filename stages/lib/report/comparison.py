"""Every variant against the float32 baseline on the same test images: size ratios, the paired accuracy
difference with its paired bootstrap interval, and McNemar's exact p."""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.lib.core import scores
from stages.lib.core.settings import Students

BASELINE = "baseline_float32"


def paired(
    reference: dict[str, Any], other: dict[str, Any], resamples: int, seed: int, confidence: float
) -> dict[str, float]:
    """`other` minus `reference` accuracy in points, with its interval at `confidence` and McNemar's p."""
    a, b = np.asarray(reference["correct"], bool), np.asarray(other["correct"], bool)
    difference = scores.paired_difference(a, b, resamples, seed, confidence)
    return {
        "pp": 100 * difference["difference"],
        "low_pp": 100 * difference["low"],
        "high_pp": 100 * difference["high"],
        "mcnemar_p": scores.mcnemar_p_value(a, b),
    }


def compare_to_baseline(
    rows: list[dict[str, Any]], resamples: int, seed: int, confidence: float
) -> list[dict[str, Any]]:
    """Add size reductions and the paired accuracy change against the float32 baseline to every row."""
    base = next((row for row in rows if row["variant"] == BASELINE), None)
    if base is None:
        raise ValueError(f"no {BASELINE} row: the report compares every variant to it")
    for row in rows:
        row["size_reduction"] = base["size_bytes"] / row["size_bytes"]
        row["compressed_reduction"] = base["compressed_bytes"] / row["compressed_bytes"]
        row["accuracy_change"] = paired(base, row, resamples, seed, confidence)
        if row.get("tflm_correct") is not None:  # the device's answers against the float32 baseline's
            row["tflm_accuracy_change"] = paired(base, on_tflm(row), resamples, seed, confidence)
    return rows


def on_tflm(row: dict[str, Any]) -> dict[str, Any]:
    """A student's row with its TFLite Micro answers as its per-image results."""
    return {**row, "correct": row["tflm_correct"]}


def distillation_gains(
    rows: list[dict[str, Any]], students: Students, resamples: int, seed: int, confidence: float
) -> list[dict[str, Any]]:
    """Each distilled student against its control (the same shape trained on labels alone), when both ran, on
    TFLite Micro's answers over the test split (what the devices would give)."""
    shapes, ran = students.shapes, students.run
    by_name = {row["model"].split("/", 1)[1]: row for row in rows if row["model"].startswith("students/")}
    gains = []
    for name in ran:
        shape = shapes[name]
        controls = [
            other
            for other in ran
            if not shapes[other].distill
            and (shapes[other].image_size, shapes[other].stop_after_block) == (shape.image_size, shape.stop_after_block)
        ]
        if shape.distill and controls:
            change = paired(on_tflm(by_name[controls[0]]), on_tflm(by_name[name]), resamples, seed, confidence)
            gains.append({"student": name, "control": controls[0], **change})
    return gains
