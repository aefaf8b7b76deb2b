"""Every variant against the float32 baseline on the same test images: size ratios, the paired accuracy
difference with its 95 % bootstrap interval, and McNemar's exact p."""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.lib import scores

BASELINE = "baseline_float32"


def paired(reference: dict[str, Any], other: dict[str, Any], resamples: int, seed: int) -> dict[str, float]:
    """`other` minus `reference` accuracy in points, with its 95 % interval and McNemar's p."""
    a, b = np.asarray(reference["correct"], bool), np.asarray(other["correct"], bool)
    difference = scores.paired_difference(a, b, resamples, seed)
    return {
        "pp": 100 * difference["difference"],
        "low_pp": 100 * difference["low"],
        "high_pp": 100 * difference["high"],
        "mcnemar_p": scores.mcnemar_p_value(a, b),
    }


def compare_to_baseline(rows: list[dict[str, Any]], resamples: int, seed: int) -> list[dict[str, Any]]:
    """Add size reductions and the paired accuracy change against the float32 baseline to every row."""
    base = next((row for row in rows if row["variant"] == BASELINE), None)
    if base is None:
        raise ValueError(f"no {BASELINE} row: the report compares every variant to it")
    for row in rows:
        row["size_reduction"] = base["size_bytes"] / row["size_bytes"]
        row["compressed_reduction"] = base["compressed_bytes"] / row["compressed_bytes"]
        row["accuracy_change"] = paired(base, row, resamples, seed)
    return rows
