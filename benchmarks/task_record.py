"""Store what a finished run of the default pipeline on another task scored, as one record under
benchmarks/results/tasks/: its classes and counts, every variant's test accuracy (interval), balanced accuracy, macro
F1 and AUC (macro one-vs-rest for more than two classes), and the pick per board with its test accuracy (on TFLite
Micro where the report ran it: `report.tested_accuracy`). tools/readme_results.py writes it into docs/decisions.md
beside the published figures.

Usage, in a clone whose workspace holds the run (e.g. after `dvc exp run -S data.task=defect_levels`):
    python benchmarks/task_record.py NAME [--workspace PATH] [--seconds S] [--training FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml
from stage_times import machine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from stages import report  # noqa: E402

RESULTS = ROOT / "benchmarks/results/tasks"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def variant_scores(workspace: Path, row: dict) -> dict:
    """One variant's test scores from its `evaluate` metrics file (the figures `summary.json` leaves out)."""
    evaluation = _read(workspace / "metrics/evaluate" / row["model"] / f"{row['format']}.json")
    keys = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "balanced_accuracy", "macro_f1", "f1", "roc_auc")
    scores = {key: evaluation[key] for key in keys if key in evaluation}
    scores["validation_roc_auc"] = evaluation["validation_roc_auc"]
    if evaluation.get("tflm"):
        scores["tflm_accuracy"] = evaluation["tflm"]["accuracy"]
    return scores | {"ram_bytes": row["ram_bytes"], "flash_bytes": row["flash_bytes"]}


def record(workspace: Path, seconds: float | None, training: dict | None = None) -> dict:
    """The run's record: task, classes, counts, every variant's scores and the board picks."""
    summary = _read(workspace / "metrics/summary.json")
    prepare = _read(workspace / "metrics/prepare.json")
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    data, model = params["data"], params["model"]
    micro = _read(workspace / "metrics/micro.json")
    picks = {}
    for board, choice in summary["recommendation"].items():
        variant = choice["variant"]
        tested = report.tested_accuracy(summary["variants"][variant], micro) if variant else None
        picks[board] = {"variant": variant, "tied": choice.get("tied", []), "test_accuracy": tested}
        picks[board]["reason"] = choice["reason"]
    return {
        "data": {key: data[key] for key in ("source", "task", "image_size", "split")},
        # A model of your own (`model.file`): the file as `prepare` checked it (its SHA-256, size and scaling).
        "model": _read(workspace / "data/prepared/own_model.json")
        | {"fine_tune": model["fine_tune"], "training": training}
        if model.get("file")
        else None,
        "classes": summary["classes"],
        "counts": prepare["counts"],
        "variants": {name: variant_scores(workspace, row) for name, row in summary["variants"].items()},
        "boards": picks,
        "machine": machine(),
        "total_seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the record's file name under benchmarks/results/tasks/")
    parser.add_argument("--workspace", type=Path, default=Path.cwd())
    parser.add_argument("--seconds", type=float, help="the run's wall time")
    parser.add_argument("--training", type=Path, help="a model of your own: the JSON line its training printed")
    args = parser.parse_args()
    training = json.loads(args.training.read_text().strip().splitlines()[-1]) if args.training else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps(record(args.workspace, args.seconds, training), indent=2) + "\n")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
