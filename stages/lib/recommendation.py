"""Which model to put on each board: the policy, from the rows' measured arenas, flash bytes and accuracies."""

from __future__ import annotations

from typing import Any

from stages.lib import boards

# What ranks the candidates: LiteRT int8 accuracy on the validation split (set by `evaluate` for int8 files).
RANKED_BY = "validation_accuracy"


def _within(value: float, smallest: float, tolerance: float) -> bool:
    return value <= smallest * (1 + tolerance)


def choose(candidates: list[dict[str, Any]], size_tolerance: float) -> dict[str, Any]:
    """The most accurate model on validation; exact ties go to the smaller.

    Smaller by what the board pays for: flash bytes first, then arena; sizes within `size_tolerance` of the
    smallest count as equal. The test split decides nothing.
    """
    best = max(row[RANKED_BY] for row in candidates)
    pool = [row for row in candidates if row[RANKED_BY] == best]
    flash = min(row["size_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["size_bytes"], flash, size_tolerance)]
    arena = min(row["tflm_arena_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["tflm_arena_bytes"], arena, size_tolerance)]
    return min(pool, key=lambda row: (row["size_bytes"], row["tflm_arena_bytes"]))


def recommend(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per board: the chosen model with why, or the true reason nothing is recommended."""
    config = params["report"]
    floor, tolerance = config["accuracy_floor"], config["size_tolerance"]
    measured = [row for row in rows if row["tflm_arena_bytes"]]
    result = {}
    for name, board in config["targets"].items():
        fits = {row["variant"]: boards.fit(row["size_bytes"], row["tflm_arena_bytes"], board) for row in measured}
        fitting = [row for row in measured if fits[row["variant"]]["fits"]]
        good = [row for row in fitting if row[RANKED_BY] >= floor]
        if good:
            row = choose(good, tolerance)
            fit = fits[row["variant"]]
            result[name] = {
                "variant": row["variant"],
                "accuracy": row["accuracy"],
                "size_bytes": row["size_bytes"],
                "tflm_arena_bytes": row["tflm_arena_bytes"],
                "arena_memory": fit["arena_memory"],
                "ram_use": fit["ram_use"],
                "flash_use": fit["flash_use"],
                "validation_accuracy": row[RANKED_BY],
                "reason": f"the most accurate on validation of the {len(good)} fitting models with validation "
                f"accuracy >= {floor:.0%}; exact ties go to the smaller (sizes within {tolerance:.0%} count as equal)",
            }
        elif fitting:
            top = max(fitting, key=lambda row: row[RANKED_BY])
            result[name] = {
                "variant": None,
                "reason": f"{len(fitting)} models fit, the most accurate on validation "
                f"({top['variant']}, {top[RANKED_BY]:.1%}) is below the {floor:.0%} floor",
            }
        elif measured:
            closest = min(measured, key=lambda row: (fits[row["variant"]]["ram_shortfall_bytes"], row["size_bytes"]))
            result[name] = {
                "variant": None,
                "reason": f"no model fits; the closest, {closest['variant']}: "
                + boards.shortfall(fits[closest["variant"]]),
            }
        else:
            result[name] = {"variant": None, "reason": "no int8 model has a TFLite Micro arena measurement"}
        result[name]["fits"] = fits
    return result
