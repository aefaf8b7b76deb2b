#!/bin/bash
# A student's validation AUC over seeds, for choosing its recipe on validation alone (the test split is not read).
# Usage, from the repository root after `dvc repro` (needs data/prepared, data/unlabeled.npz, data/teacher.npz):
#   bash benchmarks/student_seeds.sh b10_96 "5 12" "5 16" "3 16"     # "fine_tune_from_block epochs" pairs
# Each pair and seed (1 and 2, or those in $SEEDS) trains the student in a scratch copy under
# ${SCRATCH:-/tmp/student_seeds}; one line per run goes to stdout: the best Keras validation AUC, the int8 validation
# AUC (LiteRT reference kernels), the best epoch. Runs take a few minutes each; their times are only comparable on an
# otherwise idle box.
set -euo pipefail
root=$(pwd)
name=$1
shift
for cfg in "$@"; do
  set -- $cfg
  for seed in ${SEEDS:-1 2}; do
    dir=${SCRATCH:-/tmp/student_seeds}/${name}_ftb$1_e$2_s$seed
    rm -rf "$dir" && mkdir -p "$dir/data" && cd "$dir"
    cp -r "$root/stages" "$root/params.yaml" . && cp -r "$root/data/prepared" "$root/data/unlabeled.npz" "$root/data/teacher.npz" data/
    python - "$name" "$1" "$2" "$seed" "$root/benchmarks/student_shapes.yaml" <<'PY'
import sys
from pathlib import Path

import yaml

name, block, epochs, seed, extra = sys.argv[1:]
params = yaml.safe_load(Path("params.yaml").read_text())
shapes = params["students"]["shapes"]
if name not in shapes:  # a shape measured on validation and not run by the pipeline
    shapes[name] = yaml.safe_load(Path(extra).read_text())["shapes"][name]
params["seed"] = int(seed)
shapes[name] |= {"epochs": int(epochs), "fine_tune_from_block": int(block)}
Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
PY
    python -m stages.student --name "$name" > log.txt 2>&1
    python - "$name" "$1" "$2" "$seed" <<'PY'
import json
import re
import sys

sys.path.insert(0, ".")
from sklearn.metrics import roc_auc_score

from stages.lib.core import data, paths
from stages.lib.runtime import litert

name, block, epochs, seed = sys.argv[1:]
best = max(float(v) for v in re.findall(r"val_auc: ([0-9.]+)", open("log.txt").read()))
images, labels = data.load_split(paths.PREPARED, "validation")
interpreter = litert.reference_interpreter(paths.tflite_path(f"students/{name}", "int8"))
record = json.load(open(f"metrics/students/{name}.json"))
int8 = litert.predict(interpreter, data.resize_all(images, record["image_size"]), "validation")
print(
    f"{name} fine_tune_from_block {block} epochs {epochs} seed {seed}: best Keras validation AUC {best:.4f}, "
    f"int8 validation AUC {roc_auc_score(labels, int8):.4f}, best epoch {record['epochs_run']['best_fine_tune_epoch']}"
)
PY
    cd "$root"
  done
done
