"""Stage `micro`: check the deploy model on TensorFlow Lite Micro (arena, accuracy, agreement with LiteRT's
optimized and reference kernels) and export it as a C array for a firmware build; where its clustered kernels shrink
under TFLM's look-up-table compression, also the compressed model (`int8_lut`: stripped of what TFLM never reads,
then those kernels as table indices), checked to give TFLM's uncompressed outputs on every test image."""

from __future__ import annotations

import time

import numpy as np

from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import atomic_path, read_json, run_stage, write_json
from stages.lib.firmware import c_array
from stages.lib.runtime import litert, lut, tflm


def _agreement(name: str, micro: np.ndarray, other: np.ndarray, threshold: float | None) -> dict[str, float]:
    difference = np.abs(micro - other)
    return {
        f"tflm_{name}_label_agreement": float(
            (scores.decide(micro, threshold) == scores.decide(other, threshold)).mean()
        ),
        f"tflm_{name}_max_probability_difference": float(difference.max()),
        f"tflm_{name}_median_probability_difference": float(np.median(difference)),
    }


def lut_check(
    compressed: bytes, images: np.ndarray, labels: np.ndarray, uncompressed: np.ndarray, threshold: float | None
) -> dict:
    """The compressed model on TFLite Micro: its arena (with the decompression scratch), its outputs against the
    uncompressed model's on every image, its accuracy and host time per image."""
    arena = tflm.minimum_arena(compressed)
    started = time.perf_counter()
    micro = tflm.micro_predict(compressed, images, arena)
    seconds_per_image = (time.perf_counter() - started) / len(labels)
    return {
        "size_bytes": len(compressed),
        "compressed_bytes": litert.compressed_size(compressed),
        "tflm_arena_bytes": arena,
        "tflm_accuracy": scores.accuracy(labels, micro, threshold),
        "tflm_outputs_equal_uncompressed": bool(np.array_equal(micro, uncompressed)),
        "tflm_images_differing_from_uncompressed": int((micro != uncompressed).reshape(len(labels), -1).any(1).sum()),
        "tflm_host_seconds_per_image": round(seconds_per_image, 4),
    }


def main() -> None:
    params = params_lib.load()
    seed, count = params.seed, params.micro.test_images
    path = paths.tflite_path("deploy", "int8")
    images, labels = data.load_split(paths.PREPARED, "test")
    if count is not None and count < len(labels):
        # A seeded, stated subset: TFLite Micro's reference kernels are slow on a host CPU.
        chosen = np.sort(np.random.default_rng(seed).permutation(len(labels))[:count])
        images, labels = images[chosen], labels[chosen]
    threshold = read_json(paths.keras_folder("deploy") / paths.META_FILE)["threshold"]

    arena = tflm.minimum_arena(path)
    started = time.perf_counter()
    micro = tflm.micro_predict(path, images, arena)
    seconds_per_image = (time.perf_counter() - started) / len(labels)
    interpreter, kernels = litert.open_interpreter(path, params.evaluate.num_threads)
    optimized = litert.predict(interpreter, images, f"LiteRT ({kernels})")
    # LiteRT's reference kernels do the plain integer arithmetic TFLM's reference kernels also do: agreement with
    # them separates a kernel difference (XNNPACK's rounding) from a runtime defect.
    reference = litert.predict(litert.reference_interpreter(path), images, "LiteRT (reference kernels)")
    micro_scores = scores.classification_scores(labels, micro, threshold, params.statistics.confidence)

    model = path.read_bytes()
    stored, compressed, removed = lut.device_model(model, params.micro.lut_min_saving_bytes)
    lut_metrics = None
    if compressed:  # the kernels stored as look-up-table indices
        lut_metrics = lut_check(stored, images, labels, micro, threshold) | lut.summary(compressed)
        lut_metrics |= {"stripped": removed}
    source, header = c_array.c_array(model, paths.C_ARRAY_NAME, arena)
    with atomic_path(paths.MICRO_FOLDER) as folder:
        folder.mkdir()
        (folder / f"{paths.C_ARRAY_NAME}.cc").write_text(source)
        (folder / f"{paths.C_ARRAY_NAME}.h").write_text(header)
        if compressed:
            (folder / paths.LUT_FILE).write_bytes(stored)  # `firmware` writes its C array for a board
    write_json(
        paths.MICRO_METRICS,
        {
            "model_bytes": len(model),
            "tflm_arena_bytes": arena,
            "tflm_test_images": len(labels),
            "tflm_accuracy": micro_scores["accuracy"],
            "tflm_accuracy_ci": [micro_scores["accuracy_ci_low"], micro_scores["accuracy_ci_high"]],
            "tflm_balanced_accuracy": micro_scores["balanced_accuracy"],
            "litert_kernels": kernels,
            "litert_accuracy_same_images": scores.accuracy(labels, optimized, threshold),
            **_agreement("litert", micro, optimized, threshold),
            **_agreement("litert_reference", micro, reference, threshold),
            "tflm_host_seconds_per_image": round(seconds_per_image, 4),
            "int8_lut": lut_metrics,
        },
    )
    print(f"micro: arena {arena:,} bytes, TFLM accuracy {micro_scores['accuracy']:.4f} on {len(labels)} images")
    if lut_metrics:
        print(
            f"micro: int8_lut {lut_metrics['size_bytes']:,} bytes ({lut_metrics['size_bytes'] / len(model):.2f}x), "
            f"TFLM outputs equal the uncompressed model's: {lut_metrics['tflm_outputs_equal_uncompressed']}"
        )


if __name__ == "__main__":
    run_stage(main)
