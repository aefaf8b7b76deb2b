"""The report's numbers: one row per TFLite variant, paired tests, the reference conclusions checked, a recommendation."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stages.lib import scores
from stages.lib.io import read_json

BASELINE = "baseline_float32"
FORMAT_NOTES = {
    "float32": "full precision",
    "float16": "float16 weights, float math",
    "dynamic": "int8 weights, float activations",
    "int8": "int8 weights and activations",
    "int8_sparse": "int8, TFLite sparse tensor encoding",
}


def _model_of(relative: Path) -> str:
    return str(relative.parent)  # metrics/evaluate/<model>/<format>.json -> <model>


def collect(metrics: Path = Path("metrics"), confusion: Path = Path("plots/confusion")) -> list[dict[str, Any]]:
    """Join each variant's evaluate, convert, sparsity and per-image results into one row."""
    rows = []
    for path in sorted((metrics / "evaluate").rglob("*.json")):
        relative = path.relative_to(metrics / "evaluate")
        model, fmt = _model_of(relative), relative.stem
        evaluation = read_json(path)
        if model == "deploy":
            deploy = read_json(metrics / "deploy.json")
            size = {"size_bytes": deploy["size_bytes"], "compressed_bytes": deploy["compressed_bytes"]}
            sparsity, sparsity_target = deploy["sparsity_in_tflite"], deploy["sparsity_target"]
            note = f"pruned {deploy['sparsity_target']:.0%} + {deploy['method'].upper()} int8 (ships)"
        else:
            size = read_json(metrics / "convert" / model / f"{fmt}.json")
            sparsity_target = float(model.split("/")[1]) if model.startswith("pruned/") else 0.0
            sparsity = next(iter(read_json(metrics / "prune" / f"{sparsity_target}.json").values()))["sparsity_measured"]["prunable"] if sparsity_target else 0.0
            note = FORMAT_NOTES.get(fmt, fmt) + (f", pruned {sparsity_target:.0%}" if sparsity_target else "")
        predictions = read_json(confusion / relative)
        rows.append({
            "variant": evaluation["variant"], "model": model, "format": fmt, "note": note,
            "sparsity_target": sparsity_target, "sparsity_measured": sparsity,
            "accuracy": evaluation["accuracy"], "accuracy_ci95": [evaluation["accuracy_ci95_low"], evaluation["accuracy_ci95_high"]],
            "balanced_accuracy": evaluation["balanced_accuracy"], "roc_auc": evaluation["roc_auc"],
            "agreement_with_keras_baseline": evaluation["agreement_with_keras_baseline"],
            "latency_ms": evaluation["latency_ms"]["median"], "latency_iqr_ms": evaluation["latency_ms"]["iqr"], "kernels": evaluation["kernels"],
            "size_bytes": size["size_bytes"], "compressed_bytes": size["compressed_bytes"],
            "tflm_arena_bytes": evaluation.get("tflm_arena_bytes"),
            "correct": [int(p["actual"] == p["predicted"]) for p in predictions],
        })
    return rows


def compare_to_baseline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add size reductions, the accuracy change in points and McNemar's p against the float32 baseline."""
    base = next((row for row in rows if row["variant"] == BASELINE), None)
    if base is None:
        raise ValueError(f"no {BASELINE} row: the report compares every variant to it")
    base_correct = np.asarray(base["correct"], dtype=bool)
    for row in rows:
        row["size_reduction"] = base["size_bytes"] / row["size_bytes"]
        row["compressed_reduction"] = base["compressed_bytes"] / row["compressed_bytes"]
        row["accuracy_change_pp"] = 100 * (row["accuracy"] - base["accuracy"])
        row["mcnemar_p"] = scores.mcnemar_p_value(base_correct, np.asarray(row["correct"], dtype=bool))
    return rows


def find(rows: list[dict[str, Any]], variant: str) -> dict[str, Any] | None:
    return next((row for row in rows if row["variant"] == variant), None)


def recommend(rows: list[dict[str, Any]], targets: dict[str, dict], accuracy_floor: float, micro: dict[str, Any] | None = None) -> dict[str, dict]:
    """Per target: the int8 model with the smallest flash footprint whose accuracy meets the floor and which fits.

    Only int8 models with a TFLite Micro arena measurement are candidates: that is what a microcontroller runs.
    """
    from stages.lib.devices import target_fit

    result = {}
    for name, target in targets.items():
        candidates = []
        for row in rows:
            if row["tflm_arena_bytes"] is None or row["accuracy"] < accuracy_floor:
                continue
            fit = target_fit(row["size_bytes"], row["tflm_arena_bytes"], target)
            if fit["fits"]:
                candidates.append((row["size_bytes"], -row["accuracy"], row["variant"], fit))
        if candidates:
            size, negative_accuracy, variant, fit = min(candidates)
            result[name] = {"variant": variant, "accuracy": -negative_accuracy, "size_bytes": size, "arena_memory": fit["arena_memory"],
                            "reason": f"smallest int8 model with test accuracy >= {accuracy_floor:.0%} that fits ({len(candidates)} candidates)"}
        else:
            result[name] = {"variant": None, "reason": f"no int8 model reaches {accuracy_floor:.0%} test accuracy and fits {target['description']}"}
    return result


def _verdict(condition: bool | None) -> str:
    return "not testable here" if condition is None else "supported" if condition else "not supported"


def conclusions(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each conclusion of the reference report, with our evidence and a verdict computed from the rows."""
    base = find(rows, BASELINE)
    out = []

    quantized = [find(rows, f"baseline_{fmt}") for fmt in ("float16", "dynamic", "int8")]
    quantized = [row for row in quantized if row]
    costs = ", ".join(f"{row['format']} {row['accuracy_change_pp']:+.1f} pp (McNemar p={row['mcnemar_p']:.2f})" for row in quantized)
    out.append({"claim": "Quantization costs little accuracy (uniform precision change).", "evidence": costs,
                "verdict": _verdict(bool(quantized) and all(row["accuracy_change_pp"] > -2 for row in quantized))})

    speed = [(row["format"], base["latency_ms"] / row["latency_ms"]) for row in quantized if row["format"] in ("float16", "int8")]
    out.append({"claim": "int8 and float16 run faster than float32.",
                "evidence": ", ".join(f"{fmt} {ratio:.2f}x float32's speed (median latency, LiteRT CPU)" for fmt, ratio in speed),
                "verdict": _verdict(bool(speed) and all(ratio > 1.05 for _, ratio in speed))})

    pruned = sorted((row for row in rows if row["model"].startswith("pruned/") and row["format"] == "float32"), key=lambda row: row["sparsity_target"])
    moderate = [row for row in pruned if row["sparsity_target"] <= 0.7]
    out.append({"claim": "Pruning costs little accuracy up to ~70 % sparsity.",
                "evidence": ", ".join(f"{row['sparsity_target']:.0%}: {row['accuracy_change_pp']:+.1f} pp (p={row['mcnemar_p']:.2f})" for row in pruned),
                "verdict": _verdict(bool(moderate) and all(row["accuracy_change_pp"] > -1.5 for row in moderate) if moderate else None)})
    high = [row for row in pruned if row["sparsity_target"] > 0.7]
    sharp = None
    if moderate and high:
        sharp = min(row["accuracy_change_pp"] for row in high) < min(row["accuracy_change_pp"] for row in moderate) - 2
    out.append({"claim": "Accuracy declines sharply beyond ~70 % sparsity.",
                "evidence": "needs sweep points on both sides of 70 %" if sharp is None else ", ".join(f"{row['sparsity_target']:.0%}: {row['accuracy_change_pp']:+.1f} pp" for row in high),
                "verdict": _verdict(sharp)})

    if pruned:
        raw_same = all(abs(row["size_bytes"] - base["size_bytes"]) / base["size_bytes"] < 0.02 for row in pruned)
        smaller_zipped = all(row["compressed_bytes"] < 0.9 * base["compressed_bytes"] for row in pruned)
        out.append({"claim": "Pruning shows size gains only after compression (or sparse storage).",
                    "evidence": ", ".join(f"{row['sparsity_target']:.0%}: raw {row['size_reduction']:.2f}x, gzip {row['compressed_reduction']:.2f}x" for row in pruned),
                    "verdict": _verdict(raw_same and smaller_zipped)})
        same_speed = all(0.85 < base["latency_ms"] / row["latency_ms"] < 1.15 for row in pruned)
        out.append({"claim": "Pruning needs sparse kernels to run faster.",
                    "evidence": ", ".join(f"{row['sparsity_target']:.0%} dense kernels: {base['latency_ms'] / row['latency_ms']:.2f}x speed" for row in pruned)
                    + "; sparse-encoded int8 runs on " + ", ".join(sorted({row["kernels"] for row in rows if row["format"].endswith("_sparse")}) or ["(none built)"]),
                    "verdict": _verdict(same_speed)})

    hybrid = [row for row in (find(rows, "pruned_50_int8"), find(rows, "deploy_int8")) if row]
    out.append({"claim": "~50 % pruning + int8: 6-8x smaller, < 2 pp accuracy loss, > 94 % accuracy.",
                "evidence": ", ".join(f"{row['variant']}: {row['compressed_reduction']:.1f}x (gzip vs gzip), {row['accuracy_change_pp']:+.1f} pp, {row['accuracy']:.1%}" for row in hybrid),
                "verdict": _verdict(any(row["compressed_reduction"] >= 6 and row["accuracy_change_pp"] > -2 and row["accuracy"] > 0.94 for row in hybrid) if hybrid else None)})
    out.append({"claim": "Float16 suits GPUs/NPUs when accuracy is critical.",
                "evidence": "our evaluation runs LiteRT on a CPU; no GPU or NPU delegate was measured",
                "verdict": _verdict(None)})
    return out
