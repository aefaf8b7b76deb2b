"""Which model to put on each board: the policy, from the rows' measured arenas, flash bytes and accuracies."""

from __future__ import annotations

from typing import Any

from stages.lib import boards


def _within(value: float, smallest: float, tolerance: float) -> bool:
    return value <= smallest * (1 + tolerance)


def choose(candidates: list[dict[str, Any]], size_tolerance: float, margin_pp: float) -> dict[str, Any]:
    """The smallest of the models within `margin_pp` of the most accurate one.

    Smallest by what the board pays for: flash bytes first, then arena; sizes within `size_tolerance` of the
    smallest count as equal, and accuracy decides between them.
    """
    best = max(row["accuracy"] for row in candidates)
    pool = [row for row in candidates if 100 * (best - row["accuracy"]) < margin_pp]
    flash = min(row["size_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["size_bytes"], flash, size_tolerance)]
    arena = min(row["tflm_arena_bytes"] for row in pool)
    pool = [row for row in pool if _within(row["tflm_arena_bytes"], arena, size_tolerance)]
    return max(pool, key=lambda row: (row["accuracy"], -row["size_bytes"]))


def recommend(rows: list[dict[str, Any]], params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per board: the chosen model with why, or the true reason nothing is recommended."""
    config = params["report"]
    floor, tolerance, margin = config["accuracy_floor"], config["size_tolerance"], config["claims"]["small_cost_pp"]
    measured = [row for row in rows if row["tflm_arena_bytes"]]
    result = {}
    for name, board in config["targets"].items():
        fits = {row["variant"]: boards.fit(row["size_bytes"], row["tflm_arena_bytes"], board) for row in measured}
        fitting = [row for row in measured if fits[row["variant"]]["fits"]]
        good = [row for row in fitting if row["accuracy"] >= floor]
        if good:
            row = choose(good, tolerance, margin)
            fit = fits[row["variant"]]
            result[name] = {
                "variant": row["variant"],
                "accuracy": row["accuracy"],
                "size_bytes": row["size_bytes"],
                "tflm_arena_bytes": row["tflm_arena_bytes"],
                "arena_memory": fit["arena_memory"],
                "ram_use": fit["ram_use"],
                "flash_use": fit["flash_use"],
                "reason": f"smallest of the {len(good)} fitting models with accuracy >= {floor:.0%} that are within "
                f"{margin:g} pp of the most accurate; sizes within {tolerance:.0%} count as equal",
            }
        elif fitting:
            top = max(fitting, key=lambda row: row["accuracy"])
            result[name] = {
                "variant": None,
                "reason": f"{len(fitting)} models fit, the most accurate "
                f"({top['variant']}, {top['accuracy']:.1%}) is below the {floor:.0%} floor",
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
