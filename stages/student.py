"""Stage `student@<name>`: a small Lite0 (stopped after a block, at a lower resolution) learns from the teacher's
soft labels and the labels (or, as the control, the labels alone), then becomes a full-integer int8 model for
TensorFlow Lite Micro, and, with `patches`, a patch-based int8 deployment of the same network (`patch_models`).
Settings are chosen on validation; the test split is read only by `evaluate-student`."""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from stages.lib.compress import clustering, patch_models
from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import UserError, atomic_path, remove_output, run_stage, write_bytes, write_json
from stages.lib.core.settings import Distill, Settings, Shape, Threshold
from stages.lib.keras import conversion, training
from stages.lib.keras import model as model_lib
from stages.lib.runtime import litert, lut, patching


def targets(
    distill: Distill, shape: Shape, images: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """Training images and targets: labels, or teacher and labels mixed plus the teacher-labelled unlabeled cells."""
    if not shape.distill:
        return images, labels.astype(np.float32), 0
    teacher = np.load(paths.TEACHER)
    wanted = data.mixed_targets(labels, teacher["train"], distill.soft_label_weight)
    if not distill.unlabeled:
        return images, wanted, 0
    unlabeled = data.resize_all(data.load_unlabeled(paths.UNLABELED), images.shape[1])
    return np.concatenate([images, unlabeled]), np.concatenate([wanted, teacher["unlabeled"]]), len(unlabeled)


def _reference_auc(flatbuffer: bytes, validation: tuple[np.ndarray, np.ndarray]) -> float:
    probabilities = litert.predict(litert.reference_interpreter(flatbuffer), validation[0])
    return scores.roc_auc(validation[1], probabilities)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True, help="a student of `students.shapes`")
    name = parser.parse_args().name
    params = params_lib.load()
    config, seed = params.students, params.seed
    if name not in config.shapes:
        raise UserError(f"--name {name}: not in `students.shapes` ({', '.join(config.shapes)})")
    shape = config.shapes[name]
    model_lib.seed_everything(seed)
    size = shape.image_size
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    labeled = data.resize_all(train[0], size)
    images, wanted, unlabeled = targets(params.distill, shape, labeled, train[1])
    validation = (data.resize_all(validation[0], size), validation[1])
    started = time.perf_counter()
    model, epochs_run = train_student(params, shape, name, (images, wanted), validation)
    train_seconds = time.perf_counter() - started

    # Full-integer int8, calibrated on labeled training images; its decision threshold is chosen on validation with
    # LiteRT's reference kernels, the integer arithmetic TFLite Micro runs.
    representative = data.representative_images(labeled, params.convert.representative_samples, seed)
    twin = None
    if shape.clusters:  # the unclustered twin's int8 validation AUC: what clustering may cost (`decisions.md`)
        twin_int8 = conversion.convert(model, "int8", representative)
        twin = {"int8_bytes": len(twin_int8), "int8_validation_roc_auc": _reference_auc(twin_int8, validation)}
        clustering.cluster_channels(model, shape.clusters, config.cluster_min_weights)
    started = time.perf_counter()
    flatbuffer = conversion.convert(model, "int8", representative)
    convert_seconds = time.perf_counter() - started
    write_bytes(paths.tflite_path(paths.student_model(name), "int8"), flatbuffer)
    if twin:
        twin["clustered_int8_validation_roc_auc"] = _reference_auc(flatbuffer, validation)
    lut_min_saving = params.micro.lut_min_saving_bytes
    unstripped, device, device_lut, int8_validation = board_files(
        model, shape, name, flatbuffer, representative, validation, lut_min_saving
    )
    threshold, accuracies = validation_accuracies(model, int8_validation, validation, params.threshold)

    meta = {"variant": paths.variant_name(paths.student_model(name), "int8"), "threshold": threshold, **shape.as_dict()}
    with atomic_path(paths.keras_folder(paths.student_model(name))) as folder:
        folder.mkdir()
        model_lib.save_model(folder / paths.MODEL_FILE, model)
        write_json(folder / paths.META_FILE, meta)
    files = {"unstripped": unstripped, "device": device, "whole_image": flatbuffer}
    write_json(
        paths.convert_metrics_path(paths.student_model(name)),
        convert_metrics(files, device_lut, twin, shape, convert_seconds, len(representative)),
    )
    counts = {"parameters": model.count_params(), "train_images": len(labeled), "unlabeled_images": unlabeled}
    write_json(
        paths.student_metrics_path(name),
        student_metrics(shape, counts, epochs_run, accuracies, threshold, train_seconds),
    )
    print(
        f"student {name}: validation accuracy float {accuracies['float_accuracy']:.4f}, "
        f"int8 {accuracies['int8_accuracy']:.4f}; "
        f"{len(device):,} bytes" + (" in patches" if shape.patches else "")
    )


def train_student(
    params: Settings, shape: Shape, name: str, train: tuple[np.ndarray, np.ndarray], validation: tuple
) -> tuple[Any, int]:
    """The student's network (Lite0 stopped after a block, narrowed as `expand_keep` says) after its two-phase fit,
    each epoch logged under dvclive/students/<name>; and how many epochs ran."""
    config = params.students
    live = training.open_live(paths.live_folder(f"students/{name}"))
    model = model_lib.build_classifier(
        shape.image_size,
        "efficientnet_lite0",
        "bundled",
        config.dense_units,
        config.dropout,
        shape.stop_after_block,
        params_lib.expand_keep_by_block(shape.expand_keep),
        classes=len(data.load_classes(paths.PREPARED)),
    )
    fit_config = training.FitConfig(
        head_epochs=config.head_epochs,
        head_learning_rate=config.head_learning_rate,
        epochs=shape.epochs,
        learning_rate=config.learning_rate,
        fine_tune_from_block=shape.fine_tune_from_block,
        early_stopping_patience=config.early_stopping_patience,
        best_epoch_metric=params.train.best_epoch_metric,
        learning_rate_floor=params.train.learning_rate_floor,
        batch_size=config.batch_size,
        augment=params.train.augment,
        seed=params.seed,
        cache_frozen=config.cache_frozen,
    )
    runner = conversion.frozen_runner(config.frozen_runtime, params.evaluate.num_threads, config.batch_size)
    epochs_run = training.two_phase_fit(model, train, validation, live, fit_config, runner)
    live.end()
    return model, epochs_run


def validation_accuracies(
    model: Any, int8_validation: np.ndarray, validation: tuple[np.ndarray, np.ndarray], rule: Threshold
) -> tuple[float, dict[str, float]]:
    """The int8 decision threshold, and the float and int8 validation accuracies, each at its own threshold."""
    float_validation = model_lib.predict(model, validation[0])
    float_threshold = scores.decision_threshold(float_validation, validation[1], rule)
    threshold = scores.decision_threshold(int8_validation, validation[1], rule)
    return threshold, {
        "float_accuracy": scores.accuracy(validation[1], float_validation, float_threshold),
        "int8_accuracy": scores.accuracy(validation[1], int8_validation, threshold),
    }


def board_files(
    model: Any,
    shape: Shape,
    name: str,
    flatbuffer: bytes,
    representative: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    lut_min_saving: int,
) -> tuple[bytes, bytes, dict | None, np.ndarray]:
    """What a board gets and how it scores on validation: with `patches`, the patch deployment the boards are
    offered (the first blocks per patch, then the rest: `patch_models`); else the whole-image file, stripped and
    look-up-table compressed where that shrinks it. Returns the file as converted, as stored, the LUT summary and
    the int8 validation probabilities (LiteRT's reference kernels)."""
    deployment = paths.patches_folder(paths.student_model(name))
    if not shape.patches:
        remove_output(deployment)  # a stale deployment would be evaluated as this student's
        device, kernels, _ = lut.device_model(flatbuffer, lut_min_saving)
        write_bytes(paths.device_path(paths.student_model(name)), device)
        int8_validation = litert.predict(litert.reference_interpreter(flatbuffer), validation[0], "int8 validation")
        return flatbuffer, device, lut.summary(kernels) if kernels else None, int8_validation
    grid, block = shape.patches.grid, shape.patches.through_block
    with atomic_path(deployment) as folder:  # read before it moves into place: that waits for the stage's end
        folder.mkdir()
        plan = patch_models.convert_deployment(model, block, grid, representative, folder, lut_min_saving)
        unstripped, device = (folder / patching.BUNDLE_FILE).read_bytes(), (folder / patching.DEVICE_FILE).read_bytes()
        int8_validation = patching.predict(
            folder,
            validation[0],
            lambda _, model: litert.part_runner(litert.reference_interpreter(model)),
            "int8 validation (patches)",
        )
    return unstripped, device, plan["lut"], int8_validation


def convert_metrics(
    files: dict[str, bytes],
    device_lut: dict | None,
    twin: dict | None,
    shape: Shape,
    convert_seconds: float,
    representative_samples: int,
) -> dict[str, Any]:
    return {
        "int8": {
            # The int8 file (or the blob of the patch-based deployment's parts), as the converter wrote it.
            "size_bytes": len(files["unstripped"]),
            "compressed_bytes": litert.compressed_size(files["unstripped"]),
            # What a board stores: that, stripped of what TFLM never reads, kernels as look-up-table indices where
            # that shrinks them (`lut`, summarised in `lut`; None: none did).
            "device_bytes": len(files["device"]),
            "lut": device_lut,
            # Clustering's cost on validation, whole-image int8 on LiteRT's reference kernels (None: unclustered).
            "clustering": twin and {**twin, "clusters": shape.clusters},
            "whole_image_size_bytes": len(files["whole_image"]),
            "convert_seconds": round(convert_seconds, 2),
            "representative_samples": representative_samples,
        }
    }


def student_metrics(
    shape: Shape,
    counts: dict[str, int],
    epochs_run: int,
    accuracies: dict[str, float],
    threshold: float | None,
    train_seconds: float,
) -> dict[str, Any]:
    float_accuracy, int8_accuracy = accuracies["float_accuracy"], accuracies["int8_accuracy"]
    return {
        **shape.as_dict(),
        **counts,
        "epochs_run": epochs_run,
        "validation": {
            "float_accuracy": float_accuracy,
            "int8_accuracy": int8_accuracy,
            # Post-training quantization's cost on validation; above 1 pp a student would need QAT.
            "int8_loss_pp": round(100 * (float_accuracy - int8_accuracy), 2),
        },
        "threshold": threshold,
        "train_seconds": round(train_seconds, 1),
    }


if __name__ == "__main__":
    run_stage(main)
