"""Which model to put on each board: among the fitting models, those not significantly worse than the best on
validation (a paired bootstrap on the same images) are tied, and the smallest of them is the pick. The rows carry
their measured arenas, flash bytes and validation predictions; the test split decides nothing."""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.lib.core import scores
from stages.lib.core.params import RANKINGS
from stages.lib.core.settings import Report
from stages.lib.report import boards, cells

# What the floor applies to: LiteRT int8 accuracy on the validation split (set by `evaluate` for int8 files).
FLOOR_ON = "validation_accuracy"


def _within(value: float, smallest: float, tolerance: float) -> bool:
    return value <= smallest * (1 + tolerance)


def differences_from_best(
    candidates: list[dict[str, Any]],
    rank_by: str,
    resamples: int,
    seed: int,
    confidence: float,
    table: dict[str, tuple[float, np.ndarray]] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The best candidate by `rank_by` on validation, and every candidate's score minus the best's on the same
    validation images with its paired bootstrap interval at `confidence`. `table` (`scores.bootstrap_auc_table` of
    the same draws) saves drawing the AUCs again for each board."""
    best = max(candidates, key=lambda row: row[rank_by])
    labels = best["validation_labels"]
    if rank_by == "validation_roc_auc":
        if table is None:
            table = auc_table(candidates, resamples, seed)
        return best, scores.auc_differences(table, best["variant"], [row["variant"] for row in candidates], confidence)

    def correct(row: dict[str, Any]) -> np.ndarray:
        return scores.decide(row["validation_probabilities"], row["threshold"]) == labels

    return best, {
        row["variant"]: scores.paired_difference(correct(best), correct(row), resamples, seed, confidence)
        for row in candidates
    }


def auc_table(rows: list[dict[str, Any]], resamples: int, seed: int) -> dict[str, tuple[float, np.ndarray]]:
    """Every row's validation AUC on one shared set of bootstrap draws (all rows score the same validation images)."""
    if not rows:
        return {}
    labels = rows[0]["validation_labels"]
    if not all(np.array_equal(row["validation_labels"], labels) for row in rows):
        raise ValueError("the rows' validation predictions are not on the same images; rerun their evaluations")
    return scores.bootstrap_auc_table(
        labels, {row["variant"]: row["validation_probabilities"] for row in rows}, resamples, seed
    )


def tied_with_best(differences: dict[str, dict[str, float]]) -> list[str]:
    """The candidates not significantly worse than the best: their interval of the difference reaches zero."""
    return [variant for variant, difference in differences.items() if difference["high"] >= 0]


def smallest_sizes(pool: list[dict[str, Any]], size_tolerance: float) -> list[dict[str, Any]]:
    """The rows of the smallest flash bytes, then of those the smallest arena, sizes within `size_tolerance` of the
    smallest counting as equal."""
    flash = min(row["flash_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["flash_bytes"], flash, size_tolerance)]
    ram = min(row["ram_bytes"] for row in pool)
    return [row for row in pool if _within(row["ram_bytes"], ram, size_tolerance)]


def smallest(pool: list[dict[str, Any]], size_tolerance: float) -> dict[str, Any]:
    """The smallest by what the board pays for: flash bytes first, then arena (`smallest_sizes`); then the fewest
    multiply-accumulates (the latency); then the first listed. Never the score: the pool is tied on it."""
    return min(smallest_sizes(pool, size_tolerance), key=lambda row: row["multiply_accumulates"])


def below_floor(fitting: list[dict[str, Any]], floor: float) -> str:
    """The fitting models the floor left out, to two decimals (84.98 % must not read as the 85.0 % it rounds to)."""
    left_out = [f"{row['variant']} {row[FLOOR_ON]:.2%}" for row in fitting if row[FLOOR_ON] < floor]
    return f" (below it: {', '.join(left_out)})" if left_out else ""


def recommend(rows: list[dict[str, Any]], config: Report, confidence: float, seed: int) -> dict[str, dict[str, Any]]:
    """Per board: the chosen model with why, or the true reason nothing is recommended."""
    floor, tolerance, rank_by = config.accuracy_floor, config.size_tolerance, config.rank_by
    bootstrap = (config.bootstrap_resamples, seed, confidence)
    measured = [row for row in rows if row["ram_bytes"]]
    # The AUCs' bootstrap draws are the same for every board: draw them once for every candidate.
    table = auc_table(measured, *bootstrap[:2]) if rank_by == "validation_roc_auc" else None
    result = {}
    for name, board in config.targets.items():
        fits = {row["variant"]: boards.fit(row["flash_bytes"], row["ram_bytes"], board) for row in measured}
        fitting = [row for row in measured if fits[row["variant"]]["fits"]]
        good = [row for row in fitting if row[FLOOR_ON] >= floor]
        if good:
            best, differences = differences_from_best(good, rank_by, *bootstrap, table=table)
            tied = tied_with_best(differences)
            row = smallest([row for row in good if row["variant"] in tied], tolerance)
            fit = fits[row["variant"]]
            result[name] = {
                "variant": row["variant"],
                "accuracy": row["accuracy"],
                "size_bytes": row["size_bytes"],
                "flash_bytes": row["flash_bytes"],
                "tflm_arena_bytes": row["tflm_arena_bytes"],
                "ram_bytes": row["ram_bytes"],
                "arena_memory": fit["arena_memory"],
                "ram_use": fit["ram_use"],
                "flash_use": fit["flash_use"],
                "validation_accuracy": row[FLOOR_ON],
                "validation_roc_auc": row["validation_roc_auc"],
                "best": best["variant"],
                # Every candidate's validation score minus the best's, paired; `tied` lists the pick's equals.
                "differences_from_best": differences,
                "tied": tied,
                "reason": f"the smallest (flash, then RAM, sizes within {tolerance:.0%} equal; then the fewest MACs) "
                f"of the {len(tied)} "
                f"models whose {RANKINGS[rank_by]} is not significantly below the best's ({best['variant']}, "
                f"{best[rank_by]:.4f}; {cells.level(confidence)} paired bootstrap interval of the difference reaches "
                f"zero), among the {len(good)} fitting models with validation accuracy >= {floor:.0%}"
                f"{below_floor(fitting, floor)}",
            }
        elif fitting:
            top = max(fitting, key=lambda row: row[FLOOR_ON])
            result[name] = {
                "variant": None,
                "reason": f"{len(fitting)} models fit, the most accurate on validation "
                f"({top['variant']}, {top[FLOOR_ON]:.1%}) is below the {floor:.0%} floor",
            }
        elif measured:
            closest = min(measured, key=lambda row: (fits[row["variant"]]["ram_shortfall_bytes"], row["flash_bytes"]))
            result[name] = {
                "variant": None,
                "reason": f"no model fits; the closest, {closest['variant']}: "
                + boards.shortfall(fits[closest["variant"]]),
            }
        else:
            result[name] = {"variant": None, "reason": "no int8 model has a TFLite Micro arena measurement"}
        result[name]["fits"] = fits
    return result
