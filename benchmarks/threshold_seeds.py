"""How far each report row's test accuracy moves between two runs with different training seeds, under the
threshold rule before (`accuracy`: the maximum of validation accuracy) and after (`logistic`).

Usage: python benchmarks/threshold_seeds.py RUN_A RUN_B [OUT.json]   (default benchmarks/results/threshold_seeds.json)
RUN_A and RUN_B are repository copies after `dvc repro` with the same data split (`data/prepared`) and different
`seed`s. For each row (model file) of RUN_A's params, both rules pick a threshold on that file's LiteRT validation
probabilities (a patch deployment assembled as `evaluate` runs it) and the row is scored on the test split with it.
The rules were chosen on validation alone (`benchmarks/threshold_rules.py`); this reads test to report the
stability of the figures the report prints, and decides nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.core.io import write_json  # noqa: E402
from stages.lib.runtime import litert, patching  # noqa: E402

RULES = ("accuracy", "logistic")


def row_probabilities(model: str, fmt: str, threads: int, splits: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A row's LiteRT probabilities on each split's images (`splits`), as `evaluate` computes them."""
    interpreter, _ = litert.open_interpreter(paths.tflite_path(model, fmt), threads)
    size = litert.input_size(interpreter)
    deployment = paths.patches_folder(model) if fmt == "int8" else None
    deployment = deployment if deployment and deployment.exists() else None

    @functools.cache
    def open_part(_: str, part: bytes) -> patching.PartRunner:
        return litert.part_runner(litert.open_interpreter(part, threads)[0])

    result = {}
    for split, originals in splits.items():
        images = data.resize_all(originals, size)
        if deployment is None:
            result[split] = litert.predict(interpreter, images, f"{model} {fmt} ({split})")
        else:
            result[split] = patching.predict(deployment, images, open_part, f"{model} {fmt} ({split})")
    return result


def run_rows(folder: Path) -> tuple[int, dict[str, dict]]:
    """The run's seed and, per row, each rule's validation threshold and test accuracy."""
    here = Path.cwd()
    os.chdir(folder)
    try:
        params = params_lib.load()
        (validation_images, validation_labels), (test_images, test_labels) = (
            data.load_split(paths.PREPARED, split) for split in ("validation", "test")
        )
        splits = {"validation": validation_images, "test": test_images}
        rows = {}
        for model, fmt in paths.variants(params):
            found = row_probabilities(model, fmt, params.evaluate.num_threads, splits)
            row = {"test_roc_auc": scores.roc_auc(test_labels, found["test"])}
            for rule in RULES:
                config = dataclasses.replace(params.threshold, rule=rule)
                threshold = scores.decision_threshold(found["validation"], validation_labels, config)
                row[rule] = {
                    "threshold": threshold,
                    "test_accuracy": scores.accuracy(test_labels, found["test"], threshold),
                }
            rows[paths.variant_name(model, fmt)] = row
        return params.seed, rows
    finally:
        os.chdir(here)


def main() -> None:
    first, second = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parent / "results/threshold_seeds.json"
    (seed_a, rows_a), (seed_b, rows_b) = run_rows(first), run_rows(second)
    if seed_a == seed_b:
        sys.exit(f"both runs have seed {seed_a}; compare two runs with different seeds")
    rows = {}
    for name in rows_a.keys() & rows_b.keys():
        a, b = rows_a[name], rows_b[name]
        rows[name] = {
            "test_roc_auc": [a["test_roc_auc"], b["test_roc_auc"]],
            **{
                rule: {
                    "thresholds": [a[rule]["threshold"], b[rule]["threshold"]],
                    "test_accuracies": [a[rule]["test_accuracy"], b[rule]["test_accuracy"]],
                    "accuracy_move_pp": round(100 * abs(a[rule]["test_accuracy"] - b[rule]["test_accuracy"]), 2),
                }
                for rule in RULES
            },
        }
    write_json(out, {"seeds": [seed_a, seed_b], "rows": dict(sorted(rows.items()))})
    moves = {rule: [row[rule]["accuracy_move_pp"] for row in rows.values()] for rule in RULES}
    for rule, m in moves.items():
        print(f"{rule}: test accuracy moves {np.mean(m):.2f} pp on average between seeds, at most {np.max(m):.2f} pp")


if __name__ == "__main__":
    main()
