"""Stage `evaluate-*`: run one `.tflite` with the LiteRT interpreter on the test split; scores, agreement, latency."""
from __future__ import annotations

import argparse

import numpy as np

from stages.lib import data, devices, model as model_lib, params as params_lib, scores, tflite, variants
from stages.lib.io import read_json, run_stage, write_json

PREPARED = "data/prepared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="baseline, pruned/<sparsity> or deploy")
    parser.add_argument("--format", required=True)
    args = parser.parse_args()
    params = params_lib.load()
    images, labels = data.load_split(PREPARED, "test")
    path = variants.tflite_path(args.model, args.format)
    interpreter, kernels = tflite.open_interpreter(path, params["evaluate"]["num_threads"])
    probabilities = tflite.predict(interpreter, images)
    # The decision threshold is the one its Keras model chose on the validation split.
    threshold = read_json(variants.keras_folder(args.model) / model_lib.META_FILE)["threshold"]
    result = scores.classification_scores(labels, probabilities, threshold)
    keras_baseline = np.load(variants.keras_folder("baseline") / model_lib.PROBABILITIES_FILE)
    baseline_threshold = read_json(variants.keras_folder("baseline") / model_lib.META_FILE)["threshold"]
    predicted = probabilities >= threshold
    result.update({
        "variant": variants.variant_name(args.model, args.format),
        "agreement_with_keras_baseline": float((predicted == (keras_baseline >= baseline_threshold)).mean()),
        "threshold": threshold,
        "kernels": kernels,
        "num_threads": params["evaluate"]["num_threads"],
        "latency_ms": tflite.latency_ms(interpreter, images[0], params["evaluate"]["latency_runs"]),
    })
    if args.format == "int8":  # what a microcontroller runs: measure TFLite Micro's real arena
        result["tflm_arena_bytes"] = devices.minimum_arena(path)
    # Per-image predictions: DVC's confusion plot, and the report's paired tests between variants.
    confusion = [{"actual": int(a), "predicted": int(p)} for a, p in zip(labels, predicted.astype(int))]
    write_json(variants.confusion_path(args.model, args.format), confusion)
    write_json(variants.evaluate_metrics_path(args.model, args.format), result)
    print(f"evaluate: {result['variant']} accuracy {result['accuracy']:.4f}, {result['latency_ms']['median']:.2f} ms ({kernels})")


if __name__ == "__main__":
    run_stage(main)
