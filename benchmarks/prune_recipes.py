"""A pruning recipe's validation AUC over seeds, for choosing `prune.*` on validation alone (test is not read).

Usage, from the repository root after `dvc repro teacher` (needs data/prepared, data/teacher.npz, models/baseline):
    python benchmarks/prune_recipes.py 0.8 --seeds 1 2 --set epochs_per_10pp=3 soft_label_weight=0
    python benchmarks/prune_recipes.py 0.5 0.7 0.8 --set chain=true
Each seed runs the real `prune` stage in a scratch copy under /tmp/prune_recipes with the given sparsities as
`prune.sweep`, the `prune.*` overrides and that seed, converts each pruned model to int8 (calibrated on training
images, as `convert` does) and scores it on the validation split on LiteRT, as `evaluate` computes
`validation_roc_auc`. One JSON line per sparsity and seed is printed and appended to
benchmarks/results/prune_recipes.jsonl; times are comparable on an otherwise idle box only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from records import append as append_record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/prune_recipes.jsonl"
SCORE = """
import json, sys
from sklearn.metrics import roc_auc_score
from stages.lib.keras import conversion
from stages.lib.core import data, paths
from stages.lib.runtime import litert
from stages.lib.keras import model as model_lib
from stages.lib.core import params as params_lib
params, sparsity = params_lib.load(), float(sys.argv[1])
model, _ = model_lib.load(paths.keras_folder(paths.pruned_model(sparsity)))
train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
calibration = data.representative_images(train[0], params.convert.representative_samples, params.seed)
int8 = conversion.convert(model, "int8", calibration)
probabilities = litert.predict(litert.open_interpreter(int8, params.evaluate.num_threads)[0], validation[0])
keras = model_lib.predict(model, validation[0])
print(json.dumps({"int8_validation_auc": round(roc_auc_score(validation[1], probabilities), 4),
                  "keras_validation_auc": round(roc_auc_score(validation[1], keras), 4)}))
"""


def parse_value(text: str):
    return yaml.safe_load(text)


def run(sweep: list[float], seed: int, overrides: dict, scratch: Path) -> list[dict]:
    tag = "_".join(f"{k}{v}" for k, v in overrides.items()) or "default"
    folder = scratch / f"{'_'.join(map(str, sweep))}_{tag}_s{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "data").mkdir(parents=True)
    (folder / "models").mkdir()
    shutil.copytree(ROOT / "stages", folder / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("data/prepared", "data/teacher.npz", "models/baseline"):
        (folder / name).symlink_to(ROOT / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seed"] = seed
    params["prune"].update(overrides, sweep=sweep)
    if params["prune"]["sparsity"] not in sweep:
        params["prune"]["sparsity"] = sweep[0]  # deploy's start must be in the sweep; deploy does not run here
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(os.environ, PYTHONPATH=str(folder))
    started = time.perf_counter()
    with open(folder / "log.txt", "w") as log:
        subprocess.run(
            [sys.executable, "-m", "stages.prune"],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    seconds = time.perf_counter() - started
    found = []
    for sparsity in sweep:
        scored = subprocess.run(
            [sys.executable, "-c", SCORE, str(sparsity)],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        metrics = json.loads((folder / f"metrics/prune/{sparsity}.json").read_text())
        found.append(
            {
                "sparsity": sparsity,
                "seed": seed,
                "overrides": overrides,
                "prune": params["prune"],  # the whole recipe the run used, so the record stands on its own
                **json.loads(scored.stdout.splitlines()[-1]),
                "epochs": metrics["epochs"],
                "prune_seconds": round(seconds, 1),  # the whole sweep's stage
                "sparsity_measured": round(metrics["sparsity_measured"]["prunable"], 4),
            }
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("sparsities", type=float, nargs="+", help="the sweep the stage runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--set", nargs="*", default=[], help="prune.<key>=<value> overrides, without `prune.`")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/prune_recipes"))
    args = parser.parse_args()
    overrides = {key: parse_value(value) for key, value in (item.split("=", 1) for item in args.set)}
    for seed in args.seeds:
        for record in run(args.sparsities, seed, overrides, args.scratch):
            append_record(RESULTS, record)


if __name__ == "__main__":
    main()
