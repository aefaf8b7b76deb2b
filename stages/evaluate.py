"""Stage `evaluate-*`: run one `.tflite` with the LiteRT interpreter on the test split; scores, agreement, latency,
the zeros in its kernels and, for int8 files, the TensorFlow Lite Micro arena. A student with a patch-based
deployment (`patching`) is scored, sized and measured as that deployment. No TensorFlow is imported."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

import numpy as np

from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import read_json, run_stage, write_json
from stages.lib.runtime import litert, patching, tflm


def confusion(labels: np.ndarray, predicted: np.ndarray) -> list[dict[str, int]]:
    return [{"actual": int(a), "predicted": int(p)} for a, p in zip(labels, predicted.astype(int), strict=True)]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="baseline, pruned/<sparsity> or deploy")
    parser.add_argument("--format", required=True)
    parser.add_argument("--tflm", action="store_true", help="also run the whole test split on TensorFlow Lite Micro")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    params = params_lib.load()
    originals, labels = data.load_split(paths.PREPARED, "test")
    path = paths.tflite_path(args.model, args.format)
    threads, runs = params.evaluate.num_threads, params.evaluate.latency_runs
    interpreter, kernels = litert.open_interpreter(path, threads)
    size = litert.input_size(interpreter)
    images = data.resize_all(originals, size)  # a student takes smaller images
    # A student with a patch-based deployment: every score is the deployment's (the host latency times its
    # whole-image file, which computes the same function in one piece).
    deployment = paths.patches_folder(args.model) if args.format == "int8" else None
    deployment = deployment if deployment and deployment.exists() else None
    # What TFLite Micro runs: the file as a board stores it where the stage wrote one (a student's), else the same.
    device_file = paths.device_path(args.model)
    device_file = device_file if args.format == "int8" and device_file.exists() else path

    @functools.cache  # each part's interpreter opens once, for the test and the validation pass
    def open_part(_: str, model: bytes) -> patching.PartRunner:
        return litert.part_runner(litert.open_interpreter(model, threads)[0])

    def run(inputs: np.ndarray, description: str) -> np.ndarray:
        if deployment is None:
            return litert.predict(interpreter, inputs, description)
        return patching.predict(deployment, inputs, open_part, description)

    probabilities = run(images, "LiteRT (test)")
    # The decision threshold is the one its Keras model chose on the validation split.
    threshold = read_json(paths.keras_folder(args.model) / paths.META_FILE)["threshold"]
    result = scores.classification_scores(labels, probabilities, threshold, params.statistics.confidence)
    predicted = scores.decide(probabilities, threshold)
    result.update(file_measures(args, path, kernels, threads, predicted, threshold))
    result.update(latency(interpreter, path, images[0], originals[0], threads, runs))
    if deployment is not None:  # one part at a time in one arena, plus the assembled block output and the image
        result.update(deployment_measures(deployment, path, result))
    elif args.format == "int8":  # what a microcontroller runs: measure TFLite Micro's real arena
        result["tflm_arena_bytes"] = tflm.minimum_arena(device_file)
        # The RAM a board needs: the arena, and the caller's uint8 image the runner quantizes into it.
        result["ram_bytes"] = result["tflm_arena_bytes"] + litert.input_bytes(interpreter)
    # Board candidates are ranked and tied on validation (`recommendation`): the test split decides nothing. Every
    # file keeps its validation predictions, so the report can pair any two models on the same images.
    validation_images, validation_labels = data.load_split(paths.PREPARED, "validation")
    validation = run(data.resize_all(validation_images, size), "LiteRT (validation)")
    validation_scores = scores.classification_scores(validation_labels, validation, threshold)
    result["validation_accuracy"] = validation_scores["accuracy"]
    result["validation_roc_auc"] = validation_scores["roc_auc"]
    if args.tflm:  # the accuracy the device would give: TFLite Micro on every test image
        if deployment is None:
            micro = tflm.micro_predict(device_file, images, result["tflm_arena_bytes"])
        else:
            micro = tflm.micro_predict_deployment(deployment, images, result["deployment"]["part_arena_bytes"])
        micro_scores = scores.classification_scores(labels, micro, threshold, params.statistics.confidence)
        keys = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "balanced_accuracy")
        result["tflm"] = {key: micro_scores[key] for key in keys}
        write_json(
            paths.tflm_confusion_path(args.model, args.format), confusion(labels, scores.decide(micro, threshold))
        )
    write_outputs(args, result, labels, predicted, validation_labels, validation)


def file_measures(
    args: argparse.Namespace, path: Path, kernels: str, threads: int, predicted: np.ndarray, threshold: float | None
) -> dict[str, Any]:
    """What the file is (size, zeros, MACs) and how often it agrees with the Keras baseline's decisions."""
    keras_baseline = np.load(paths.keras_folder("baseline") / paths.PROBABILITIES_FILE)
    baseline_threshold = read_json(paths.keras_folder("baseline") / paths.META_FILE)["threshold"]
    return {
        "variant": paths.variant_name(args.model, args.format),
        "agreement_with_keras_baseline": float((predicted == scores.decide(keras_baseline, baseline_threshold)).mean()),
        "threshold": threshold,
        "kernels": kernels,
        "num_threads": threads,
        "size_bytes": path.stat().st_size,
        # One denominator for every variant: all conv, depthwise and dense kernels stored in this file.
        "kernel_zeros_in_file": litert.tflite_weight_sparsity(path),
        "multiply_accumulates": litert.multiply_accumulates(path),
    }


def latency(
    interpreter: Any, path: Path, image: np.ndarray, original: np.ndarray, threads: int, runs: int
) -> dict[str, Any]:
    """The host latency; other files than the float32 baseline are timed alternately with it, so the speed-up is
    free of the machine's drift."""
    reference = paths.tflite_path("baseline", "float32")
    if path == reference:
        return {"latency_ms": litert.latency_ms(interpreter, image, runs)}
    timing = litert.paired_latency_ms(
        interpreter, litert.open_interpreter(reference, threads)[0], image, original, runs
    )
    return {
        "latency_ms": timing["latency_ms"],
        "float32_latency_ms": timing["reference_latency_ms"],
        "speedup_vs_float32": timing["speedup"],
    }


def deployment_measures(deployment: Path, path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """A patch deployment's RAM, flash and MACs as the board runs it (its parts stripped of what TFLM never reads),
    with the whole-image file's figures beside them."""
    parts, plan = [model for _, model in patching.parts(deployment, device=True)], patching.read_plan(deployment)
    arenas = [tflm.minimum_arena(part) for part in parts]
    size_bytes = patching.flash_bytes(deployment)
    return {
        # One part at a time in one arena: the largest part's; the RAM adds the block-output buffer and the image.
        "tflm_arena_bytes": max(arenas),
        "ram_bytes": patching.ram_bytes(plan, arenas),
        "deployment": {
            "patches": f"{plan['grid']}x{plan['grid']} through block {plan['through_block']}",
            "part_arena_bytes": arenas,
            "buffer_bytes": int(np.prod(plan["buffer_shape"])),
            "input_bytes": int(np.prod(plan["input_shape"])),
            "size_bytes": size_bytes,
            "unstripped_size_bytes": (deployment / patching.BUNDLE_FILE).stat().st_size,
            "separate_parts_size_bytes": plan["separate_bytes"],
            "whole_image_size_bytes": result["size_bytes"],
            "whole_image_multiply_accumulates": result["multiply_accumulates"],
            "whole_image_tflm_arena_bytes": tflm.minimum_arena(path),
            "latency_ms": "of the whole-image file",
        },
        "size_bytes": size_bytes,
        # The patches recompute their overlapping borders: the deployment's MACs are what the board's latency costs.
        # (Counted by LiteRT, on the parts as the converter wrote them: it refuses the stripped ones.)
        "multiply_accumulates": sum(litert.multiply_accumulates(part) for _, part in patching.parts(deployment)),
    }


def write_outputs(
    args: argparse.Namespace,
    result: dict[str, Any],
    labels: np.ndarray,
    predicted: np.ndarray,
    validation_labels: np.ndarray,
    validation: np.ndarray,
) -> None:
    """Per-image predictions (DVC's confusion plot, the report's paired tests between variants) and the metrics."""
    write_json(paths.confusion_path(args.model, args.format), confusion(labels, predicted))
    write_json(
        paths.validation_predictions_path(args.model, args.format),
        {"labels": [int(label) for label in validation_labels], "probabilities": validation.tolist()},
    )
    write_json(paths.evaluate_metrics_path(args.model, args.format), result)
    print(
        f"evaluate: {result['variant']} accuracy {result['accuracy']:.4f}, "
        f"{result['latency_ms']['median']:.2f} ms ({result['kernels']})"
    )


if __name__ == "__main__":
    run_stage(main)
