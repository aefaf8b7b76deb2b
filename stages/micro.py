"""Stage `micro`: check the deploy model on TensorFlow Lite Micro (arena, accuracy, agreement with LiteRT)
and export it as a C array for an ESP-IDF project."""
from __future__ import annotations

import time

import numpy as np

from stages.lib import data, devices, model as model_lib, params as params_lib, scores, tflite, variants
from stages.lib.io import atomic_path, read_json, run_stage, write_json

PREPARED, OUTPUT, METRICS, ARRAY_NAME = "data/prepared", "models/micro", "metrics/micro.json", "edge_model"


def main() -> None:
    params = params_lib.load()
    path = variants.tflite_path("deploy", "int8")
    images, labels = data.load_split(PREPARED, "test")
    count = params["micro"]["test_images"]
    if count is not None and count < len(labels):
        # A seeded, stated subset: TFLite Micro's reference kernels are slow on a host CPU.
        chosen = np.sort(np.random.default_rng(params["seed"]).permutation(len(labels))[:count])
        images, labels = images[chosen], labels[chosen]
    threshold = read_json(variants.keras_folder("deploy") / model_lib.META_FILE)["threshold"]

    arena = devices.minimum_arena(path)
    started = time.perf_counter()
    micro = devices.micro_predict(path, images, arena)
    seconds_per_image = (time.perf_counter() - started) / len(labels)
    interpreter, _ = tflite.open_interpreter(path, params["evaluate"]["num_threads"])
    litert = tflite.predict(interpreter, images)
    micro_scores = scores.classification_scores(labels, micro, threshold)

    model = path.read_bytes()
    source, header = devices.c_array(model, ARRAY_NAME, arena)
    with atomic_path(OUTPUT) as folder:
        folder.mkdir()
        (folder / f"{ARRAY_NAME}.cc").write_text(source)
        (folder / f"{ARRAY_NAME}.h").write_text(header)
    write_json(METRICS, {
        "model_bytes": len(model),
        "tflm_arena_bytes": arena,
        "tflm_test_images": len(labels),
        "tflm_accuracy": micro_scores["accuracy"],
        "tflm_balanced_accuracy": micro_scores["balanced_accuracy"],
        "litert_accuracy_same_images": scores.classification_scores(labels, litert, threshold)["accuracy"],
        "tflm_litert_label_agreement": float(((micro >= threshold) == (litert >= threshold)).mean()),
        "tflm_litert_max_probability_difference": float(np.abs(micro - litert).max()),
        "tflm_host_seconds_per_image": round(seconds_per_image, 4),
        "targets": {name: devices.target_fit(len(model), arena, target) for name, target in params["report"]["targets"].items()},
    })
    print(f"micro: arena {arena:,} bytes, TFLM accuracy {micro_scores['accuracy']:.4f} on {len(labels)} images")


if __name__ == "__main__":
    run_stage(main)
