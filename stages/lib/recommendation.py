"""Which model to put on each board: the policy, from the rows' measured arenas, flash bytes and accuracies."""

from __future__ import annotations

from typing import Any

from stages.lib import boards
from stages.lib.params import RANKINGS

# What the floor applies to: LiteRT int8 accuracy on the validation split (set by `evaluate` for int8 files).
FLOOR_ON = "validation_accuracy"


def _within(value: float, smallest: float, tolerance: float) -> bool:
    return value <= smallest * (1 + tolerance)


def choose(
    candidates: list[dict[str, Any]], size_tolerance: float, rank_by: str, score_tolerance: float
) -> dict[str, Any]:
    """Among the models within `score_tolerance` of the best validation score `rank_by`, the smallest.

    Smaller by what the board pays for: flash bytes first, then arena; sizes within `size_tolerance` of the
    smallest count as equal, and the better score decides between them. The test split decides nothing.
    """
    best = max(row[rank_by] for row in candidates)
    pool = [row for row in candidates if row[rank_by] >= best - score_tolerance]
    flash = min(row["flash_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["flash_bytes"], flash, size_tolerance)]
    arena = min(row["tflm_arena_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["tflm_arena_bytes"], arena, size_tolerance)]
    return max(pool, key=lambda row: (row[rank_by], -row["flash_bytes"], -row["tflm_arena_bytes"]))


def below_floor(fitting: list[dict[str, Any]], floor: float) -> str:
    """The fitting models the floor left out, to two decimals (84.98 % must not read as the 85.0 % it rounds to)."""
    left_out = [f"{row['variant']} {row[FLOOR_ON]:.2%}" for row in fitting if row[FLOOR_ON] < floor]
    return f" (below it: {', '.join(left_out)})" if left_out else ""


def recommend(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per board: the chosen model with why, or the true reason nothing is recommended."""
    config = params["report"]
    floor, tolerance, rank_by = config["accuracy_floor"], config["size_tolerance"], config["rank_by"]
    score_tolerance = config["rank_tolerance"]
    measured = [row for row in rows if row["tflm_arena_bytes"]]
    result = {}
    for name, board in config["targets"].items():
        fits = {row["variant"]: boards.fit(row["flash_bytes"], row["tflm_arena_bytes"], board) for row in measured}
        fitting = [row for row in measured if fits[row["variant"]]["fits"]]
        good = [row for row in fitting if row[FLOOR_ON] >= floor]
        if good:
            row = choose(good, tolerance, rank_by, score_tolerance)
            fit = fits[row["variant"]]
            result[name] = {
                "variant": row["variant"],
                "accuracy": row["accuracy"],
                "size_bytes": row["size_bytes"],
                "flash_bytes": row["flash_bytes"],
                "tflm_arena_bytes": row["tflm_arena_bytes"],
                "arena_memory": fit["arena_memory"],
                "ram_use": fit["ram_use"],
                "flash_use": fit["flash_use"],
                "validation_accuracy": row[FLOOR_ON],
                "validation_roc_auc": row["validation_roc_auc"],
                "reason": f"the smallest of the {len(good)} fitting models with validation accuracy >= {floor:.0%}"
                f"{below_floor(fitting, floor)} whose {RANKINGS[rank_by]} is within {score_tolerance:g} of the best "
                f"(flash, then arena; sizes within {tolerance:.0%} count as equal, and the better score wins)",
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
