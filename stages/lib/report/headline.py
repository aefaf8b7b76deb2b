"""The run's headline: the few numbers a person compares across runs with `dvc metrics show`, `dvc metrics diff` and
`dvc exp show`; nothing else is a DVC metric.

One small file per model (`metrics/models/<variant>.json`: test accuracy, validation ROC AUC, file and board bytes,
TFLite Micro arena, latency median), per board (`metrics/boards/<board>.json`: the pick's TFLM test accuracy and
validation AUC, the share of RAM and flash it takes) and per verdict (`metrics/verdicts/<verdict>.json`: `n`, how
many of the reference report's claims got it). The files share their few short keys, so `dvc metrics show` prints
one row per file in one narrow table. Scores are rounded to what 333 images resolve (4 decimals), the latency to
0.01 ms and a board share to 0.1 %. Intervals, confusion counts, percentiles, reasons and names stay in the
git-tracked JSON outputs the report and the tests read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# dvc.yaml's `report` stage declares these three folders, and only these, as metrics.
FOLDERS = {"models": Path("metrics/models"), "boards": Path("metrics/boards"), "verdicts": Path("metrics/verdicts")}
SCORE_DECIMALS, MS_DECIMALS, SHARE_DECIMALS = 4, 2, 3


def model(row: dict[str, Any]) -> dict[str, float | int]:
    """acc, auc, bytes, ms; and for an int8 model a board can run, stored (bytes on the board) and arena."""
    values: dict[str, float | int] = {
        "acc": round(row["accuracy"], SCORE_DECIMALS),
        "auc": round(row["validation_roc_auc"], SCORE_DECIMALS),
        "bytes": row["size_bytes"],
        "ms": round(row["latency_ms"]["median"], MS_DECIMALS),
    }
    if row["ram_bytes"]:
        values |= {"stored": row["flash_bytes"], "ram": row["ram_bytes"]}
    return values


def board(choice: dict[str, Any], device_accuracy: float) -> dict[str, float]:
    """The pick's accuracy on TFLite Micro over the test split, its validation AUC, and the RAM and flash shares."""
    return {
        "acc": round(device_accuracy, SCORE_DECIMALS),
        "auc": round(choice["validation_roc_auc"], SCORE_DECIMALS),
        "ram": round(choice["ram_use"], SHARE_DECIMALS),
        "flash": round(choice["flash_use"], SHARE_DECIMALS),
    }


def verdict_counts(checks: list[dict[str, str]], verdicts: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Every verdict's count (zeros included, so a verdict that empties shows in a diff), keyed by a file name."""
    return {
        verdict.replace(" ", "_"): {"n": sum(check["verdict"] == verdict for check in checks)} for verdict in verdicts
    }
