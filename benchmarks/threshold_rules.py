"""Which decision-threshold rule holds up on images it did not see: measured on the validation split alone.

Usage: python benchmarks/threshold_rules.py [OUT.json]   (default benchmarks/results/threshold_rules.json)
For each model file of the current run, its LiteRT validation probabilities are resampled with replacement; each
rule picks a threshold on the resample and is scored on the validation images the resample left out (out of bag).
The test split is never read. A rule that picks a steadier threshold and scores higher out of bag is the better
choice for `threshold.rule`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.lib.core import data, paths, scores
from stages.lib.core.io import write_json  # noqa: E402
from stages.lib.runtime import litert  # noqa: E402

MODELS = {
    "baseline float32": ("baseline", "float32"),
    "baseline int8": ("baseline", "int8"),
    "pruned 0.5 float32": ("pruned/0.5", "float32"),
    "pruned 0.7 float32": ("pruned/0.7", "float32"),
    "pruned 0.8 float32": ("pruned/0.8", "float32"),
    "pruned 0.8 int8": ("pruned/0.8", "int8"),
    "deploy int8": ("deploy", "int8"),
    "student b10_96 int8": ("students/b10_96", "int8"),
    "student b7_64 int8": ("students/b7_64", "int8"),
    "student b7_64_labels int8": ("students/b7_64_labels", "int8"),
}
RESAMPLES, SEED = 300, 0
# The candidates' decimals and the logit clip, as params.yaml's `threshold` section has them.
DECIMALS, CLIP = 4, 1e-4


def plateau_median(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The median of every candidate threshold that reaches the best accuracy (the middle of the plateau)."""
    return float(np.median(scores.best_accuracy_thresholds(probabilities, labels, DECIMALS)))


def bagged(probabilities: np.ndarray, labels: np.ndarray, resamples: int = 100) -> float:
    """The median of the accuracy maximum over bootstrap resamples (bagging)."""
    rng = np.random.default_rng(1)
    picks = []
    for _ in range(resamples):
        index = rng.integers(0, len(labels), len(labels))
        picks.append(scores.accuracy_threshold(probabilities[index], labels[index], DECIMALS))
    return float(np.median(picks))


RULES = {
    "logistic": lambda p, y: scores.logistic_threshold(p, y, CLIP),
    "accuracy": lambda p, y: scores.accuracy_threshold(p, y, DECIMALS),
    "plateau_median": plateau_median,
    "bagged_accuracy": bagged,
    "class_prior (1 - positive share)": lambda p, y: float(1 - y.mean()),
    "fixed 0.5": lambda p, y: 0.5,
}


def validation_probabilities(model: str, fmt: str, images: np.ndarray) -> np.ndarray:
    interpreter, _ = litert.open_interpreter(paths.tflite_path(model, fmt), 2)
    return litert.predict(interpreter, data.resize_all(images, litert.input_size(interpreter)), model)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/threshold_rules.json")
    images, labels = data.load_split(paths.PREPARED, "validation")
    labels = labels.astype(int)
    rng = np.random.default_rng(SEED)
    resamples = [rng.integers(0, len(labels), len(labels)) for _ in range(RESAMPLES)]
    results: dict[str, dict] = {}
    for name, (model, fmt) in MODELS.items():
        probabilities = validation_probabilities(model, fmt, images)
        results[name] = {}
        for rule, choose in RULES.items():
            accuracies, thresholds = [], []
            for index in resamples:
                left_out = np.setdiff1d(np.arange(len(labels)), index)
                threshold = choose(probabilities[index], labels[index])
                thresholds.append(threshold)
                accuracies.append(float(((probabilities[left_out] >= threshold) == labels[left_out]).mean()))
            results[name][rule] = {
                "out_of_bag_accuracy": round(float(np.mean(accuracies)), 4),
                "threshold_median": round(float(np.median(thresholds)), 3),
                "threshold_sd": round(float(np.std(thresholds)), 3),
            }
        print(name, {rule: values["out_of_bag_accuracy"] for rule, values in results[name].items()}, flush=True)
    means = {
        rule: round(float(np.mean([r[rule]["out_of_bag_accuracy"] for r in results.values()])), 4) for rule in RULES
    }
    run = subprocess.run(["git", "log", "-1", "--format=%h", "--", "dvc.lock"], capture_output=True, text=True)
    write_json(
        out,
        {
            "models_from_run": run.stdout.strip(),
            "validation_images": len(labels),
            "resamples": RESAMPLES,
            "mean_out_of_bag_accuracy": means,
            "models": results,
        },
    )
    print("mean out-of-bag accuracy:", means)


if __name__ == "__main__":
    main()
