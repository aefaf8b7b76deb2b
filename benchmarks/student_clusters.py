"""Clustering a trained student for TensorFlow Lite Micro's look-up tables, on validation alone (test is not read).

Usage, from the repository root after `dvc exp run -S students.shapes.<name>.clusters=null` (needs data/prepared
and the student's unclustered model):
    python benchmarks/student_clusters.py b10_96 --clusters 16 8 --min-weights 4096 16384
For each cluster count and smallest kernel clustered: the student's trained Conv2D and Dense kernels clustered per
output channel as `student` clusters them (`clustering.cluster_channels`), int8 (calibrated as `student` calibrates),
then its validation ROC AUC on LiteRT's reference kernels against the unclustered twin's, and
the bytes of its whole-image file stripped and look-up-table compressed (`lut`). One JSON line per candidate is
printed and appended to benchmarks/results/student_clusters.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from records import append as append_record  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from stages.lib.compress import clustering
from stages.lib.core import data, paths
from stages.lib.core import params as params_lib  # noqa: E402
from stages.lib.keras import conversion
from stages.lib.keras import model as model_lib  # noqa: E402
from stages.lib.runtime import litert, lut  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results/student_clusters.jsonl"


def score(flatbuffer: bytes, validation: tuple) -> float:
    probabilities = litert.predict(litert.reference_interpreter(flatbuffer), validation[0])
    return round(float(roc_auc_score(validation[1], probabilities)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name")
    parser.add_argument("--clusters", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--min-weights", type=int, nargs="+", default=[4096])
    args = parser.parse_args()
    params = params_lib.load()
    shape = params.students.shapes[args.name]
    size = shape.image_size
    train = data.load_split(paths.PREPARED, "train")
    validation = data.load_split(paths.PREPARED, "validation")
    validation = (data.resize_all(validation[0], size), validation[1])
    labeled = data.resize_all(train[0], size)
    representative = data.representative_images(labeled, params.convert.representative_samples, params.seed)
    trained, _ = model_lib.load(paths.keras_folder(paths.student_model(args.name)))
    if clustering.cluster_channels(trained, max(args.clusters), params.students.cluster_min_weights) == 0:
        sys.exit(f"{args.name} is already clustered: train it with `-S students.shapes.{args.name}.clusters=null`")
    trained, _ = model_lib.load(paths.keras_folder(paths.student_model(args.name)))
    twin = conversion.convert(trained, "int8", representative)
    twin_auc = score(twin, validation)
    minimum = params.micro.lut_min_saving_bytes
    for clusters in args.clusters:
        for min_weights in args.min_weights:
            started = time.perf_counter()
            clustered, _ = model_lib.load(paths.keras_folder(paths.student_model(args.name)))
            kernels = clustering.cluster_channels(clustered, clusters, min_weights)
            int8 = conversion.convert(clustered, "int8", representative)
            stripped, _ = lut.strip(int8)
            compressed = lut.compress(stripped, minimum)
            record = {
                "method": "per output channel",
                "student": args.name,
                "clusters": clusters,
                "cluster_min_weights": min_weights,
                "kernels_clustered": kernels,
                "seed": params.seed,
                "validation_auc": score(int8, validation),
                "twin_validation_auc": twin_auc,
                "int8_bytes": len(twin),
                "stripped_bytes": len(stripped),
                "lut_bytes": len(compressed[0]) if compressed else None,
                "seconds": round(time.perf_counter() - started, 1),
            }
            append_record(RESULTS, record)


if __name__ == "__main__":
    main()
