"""The report's rows: one per variant the params define, joined from that variant's convert, evaluate and
per-image files. Never globbed from disk: DVC leaves the outputs of stages that left the DAG."""

from __future__ import annotations

from typing import Any

import numpy as np

from stages.lib.core import paths
from stages.lib.core.io import UserError, read_json
from stages.lib.core.settings import Settings


def lut_compressed(row: dict[str, Any]) -> bool:
    """Whether a board stores this row as its TFLM look-up-table-compressed file (`int8_lut`), not the int8 file."""
    return bool(row.get("lut"))


FORMAT_NOTES = {
    "float32": "full precision",
    "float16": "float16 weights, float math",
    "dynamic": "int8 weights, float activations",
    "int8": "int8 weights and activations",
    "int8_sparse": "int8, TFLite sparse tensor encoding",
}


def _read(path: Any) -> Any:
    if not path.exists():
        raise UserError(f"{path} is missing; run `dvc repro` (the report reads every variant params.yaml defines)")
    return read_json(path)


def _sparsity_target(model: str, params: Settings) -> float:
    if model.startswith("pruned/"):
        return float(model.split("/", 1)[1])
    return params.prune.sparsity if model == "deploy" else 0.0


def collect(params: Settings) -> list[dict[str, Any]]:
    """Join each variant's evaluate, convert (or deploy) and per-image results into one row."""
    return [_row(model, fmt, params) for model, fmt in paths.variants(params)]


def _size_and_note(model: str, fmt: str, params: Settings) -> tuple[dict[str, Any], str]:
    """The variant's convert (or deploy) record, and the note that says what the variant is."""
    if model == "deploy":
        method, clusters = params.deploy.method, params.deploy.clusters
        note = f"pruned {params.prune.sparsity:.0%} + {method.upper()} int8"
        return _read(paths.DEPLOY_METRICS), note + (f" ({clusters} clusters)" if method == "pcqat" else "")
    size = _read(paths.convert_metrics_path(model))[fmt]
    if not model.startswith("students/"):
        return size, FORMAT_NOTES.get(fmt, fmt)
    shape = params.students.shapes[model.split("/", 1)[1]]
    note = f"Lite0 to block {shape.stop_after_block}, {shape.image_size} px, " + (
        "distilled" if shape.distill else "labels only"
    )
    if shape.patches:
        grid, block = shape.patches.grid, shape.patches.through_block
        note += f", blocks to {block} in {grid}×{grid} patches"
    return size, note


def _stored(
    model: str, size: dict[str, Any], evaluation: dict[str, Any]
) -> tuple[int, int | None, int | None, dict | None]:
    """What a board stores and the RAM it needs: the deploy model under TFLM's look-up-table compression where it
    shrinks (`micro`; the arena then adds the decompression scratch); a student stripped, its clustered kernels as
    look-up-table indices where that shrinks them (`student`). Returns flash bytes, the arena (the largest part's in
    patches), the RAM (the arena plus what the runner holds outside it: the image, a patch deployment's block-output
    buffer) and the LUT record."""
    flash, lut = size.get("device_bytes", size["size_bytes"]), None
    arena, ram = evaluation.get("tflm_arena_bytes"), evaluation.get("ram_bytes")
    if model == "deploy":
        lut = _read(paths.MICRO_METRICS).get("int8_lut")
        if lut:
            flash, arena, ram = lut["size_bytes"], lut["tflm_arena_bytes"], ram - arena + lut["tflm_arena_bytes"]
    elif model.startswith("students/"):
        lut = size.get("lut")
    return flash, arena, ram, lut


def _row(model: str, fmt: str, params: Settings) -> dict[str, Any]:
    evaluation = _read(paths.evaluate_metrics_path(model, fmt))
    size, note = _size_and_note(model, fmt, params)
    sparsity_target = _sparsity_target(model, params)
    pruned_layers = None
    if model.startswith("pruned/"):
        pruned_layers = _read(paths.prune_metrics_path(sparsity_target))["sparsity_measured"]["prunable"]
    elif model == "deploy":
        pruned_layers = size["sparsity_after_pruning"]["prunable"]
    flash, arena, ram, lut = _stored(model, size, evaluation)
    predictions = _read(paths.confusion_path(model, fmt))
    validation = _read(paths.validation_predictions_path(model, fmt))
    # Students are also run on TFLite Micro over the whole test split (`evaluate-student`).
    micro = _read(paths.tflm_confusion_path(model, fmt)) if model.startswith("students/") else None
    return {
        "variant": evaluation["variant"],
        "model": model,
        "format": fmt,
        "note": note,
        "sparsity_target": sparsity_target,
        "kernel_zeros_in_file": evaluation["kernel_zeros_in_file"],
        "zeros_in_pruned_layers": pruned_layers,
        "accuracy": evaluation["accuracy"],
        "threshold": evaluation["threshold"],
        "accuracy_ci": [evaluation["accuracy_ci_low"], evaluation["accuracy_ci_high"]],
        "balanced_accuracy": evaluation["balanced_accuracy"],
        "roc_auc": evaluation["roc_auc"],
        "agreement_with_keras_baseline": evaluation["agreement_with_keras_baseline"],
        "latency_ms": evaluation["latency_ms"],
        # Timed alternately with the float32 baseline in the same process (absent on float32 itself).
        "float32_latency_ms": evaluation.get("float32_latency_ms"),
        "speedup_vs_float32": evaluation.get("speedup_vs_float32"),
        "validation_accuracy": evaluation.get("validation_accuracy"),
        "validation_roc_auc": evaluation.get("validation_roc_auc"),
        "kernels": evaluation["kernels"],
        "size_bytes": size["size_bytes"],
        "compressed_bytes": size["compressed_bytes"],
        "flash_bytes": flash,
        "lut": lut,
        "clustering": size.get("clustering"),  # a student's (`student`)
        # The arena the stored model needs (a compressed one adds TFLM's decompression scratch; in patches, the
        # largest part's), and the RAM a board needs for it: what the board fit counts.
        "tflm_arena_bytes": arena,
        "ram_bytes": ram,
        "tflm": evaluation.get("tflm"),
        # A patch-based deployment's parts and their arenas (students with `patches`).
        "deployment": evaluation.get("deployment"),
        "multiply_accumulates": evaluation["multiply_accumulates"],
        "correct": _correct(predictions),
        "tflm_correct": _correct(micro) if micro is not None else None,
        # What the board pick pairs models on (`recommendation`); left out of the summary.
        "validation_labels": np.array(validation["labels"], dtype=int),
        "validation_probabilities": np.array(validation["probabilities"], dtype=np.float64),
    }


def _correct(predictions: list[dict[str, int]]) -> list[int]:
    return [int(p["actual"] == p["predicted"]) for p in predictions]


def find(rows: list[dict[str, Any]], variant: str) -> dict[str, Any] | None:
    return next((row for row in rows if row["variant"] == variant), None)
