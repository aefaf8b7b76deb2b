"""Table cells shared by the report and the README's results block: one format for each kind of number."""

from __future__ import annotations

from typing import Any

from stages.lib.report.comparison import BASELINE
from stages.lib.report.rows import lut_compressed


def level(confidence: float) -> str:
    """`95 %`: an interval's confidence level, as the tables name it."""
    return f"{100 * confidence:g} %"


def mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB"


def label(row: dict[str, Any]) -> str:
    """A reader's name for a variant: `pruned 50 % + int8`, `deploy: ...`."""
    if row["model"] == "deploy":
        return f"deploy: {row['note']}"
    if row["model"].startswith("students/"):
        return f"student {row['model'].split('/', 1)[1]}: {row['note']}"
    fmt = {"float32": "", "int8_sparse": " + int8, sparse-encoded"}.get(row["format"], f" + {row['format']}")
    if row["model"] == "baseline":
        return f"baseline {row['format']}"
    return f"pruned {row['sparsity_target']:.0%}{fmt}"


def accuracy(value: float, low: float, high: float) -> str:
    """`93.4% (90.2%–95.6%)`: an accuracy and its interval."""
    return f"{value:.1%} ({low:.1%}–{high:.1%})"


def row_accuracy(row: dict[str, Any]) -> str:
    return accuracy(row["accuracy"], *row["accuracy_ci"])


def score_difference(difference: dict[str, float]) -> str:
    """`-0.0070 (-0.0190 to +0.0050)`: a score difference with its interval."""
    return f"{difference['difference']:+.4f} ({difference['low']:+.4f} to {difference['high']:+.4f})"


def change(difference: dict[str, Any]) -> str:
    """`+0.3 (-1.2 to +1.8)`: a difference in points and its interval."""
    return f"{difference['pp']:+.1f} ({difference['low_pp']:+.1f} to {difference['high_pp']:+.1f})"


def change_vs_baseline(variant: str, row: dict[str, Any]) -> str:
    """The change against the float32 baseline; a dash on the baseline's own row."""
    return "–" if variant == BASELINE else change(row["accuracy_change"])


def sizes(row: dict[str, Any]) -> str:
    """The file, its gzip size and the reduction, as three cells."""
    return f"{mb(row['size_bytes'])} | {mb(row['compressed_bytes'])} | {row['compressed_reduction']:.1f}×"


def flash(row: dict[str, Any]) -> str:
    """The bytes a board stores; where that is the look-up-table-compressed file, the raw int8 file beside it."""
    if not lut_compressed(row):
        return f"{row['flash_bytes']:,} B"
    return f"{row['flash_bytes']:,} B int8_lut ({row['size_bytes']:,} B int8)"


def ram(row: dict[str, Any]) -> str:
    """The RAM a board needs for the model (what the board fit counts), with its TFLM arena: the arena and the image,
    and in patches the largest part's arena, the block-output buffer and the image."""
    if not row["ram_bytes"]:
        return "–"
    return f"{row['ram_bytes']:,} B (arena {row['tflm_arena_bytes']:,} B" + (
        ", in patches)" if row.get("deployment") else ")"
    )


def tflm_accuracy(tflm: dict[str, Any]) -> str:
    """A TFLite Micro test accuracy (an `evaluate --tflm` result) and its interval."""
    return accuracy(tflm["accuracy"], tflm["accuracy_ci_low"], tflm["accuracy_ci_high"])


def distillation(gain: dict[str, Any], level: str, note: str | None = None) -> str:
    """One distilled student against its control (TFLM test accuracy), its `level` interval and an optional `note`."""
    extra = f"; {note}" if note else ""
    return (
        f"`{gain['student']}` minus its labels-only control `{gain['control']}` on TFLite Micro: {gain['pp']:+.1f} pp "
        f"({level} paired bootstrap interval {gain['low_pp']:+.1f} to {gain['high_pp']:+.1f}{extra})"
    )
