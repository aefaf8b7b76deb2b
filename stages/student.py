"""Stage `student@<name>`: a small Lite0 (stopped after a block, at a lower resolution) learns from the teacher's
soft labels and the labels (or, as the control, the labels alone), then becomes a full-integer int8 model for
TensorFlow Lite Micro, and, with `patches`, a patch-based int8 deployment of the same network (`patch_models`).
Settings are chosen on validation; the test split is read only by `evaluate-student`."""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np

from stages.lib.compress import clustering, patch_models
from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import UserError, atomic_path, run_stage, write_bytes, write_json
from stages.lib.keras import conversion, training
from stages.lib.keras import model as model_lib
from stages.lib.runtime import litert, lut, patching


def targets(params: dict, shape: dict, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Training images and targets: labels, or teacher and labels mixed plus the teacher-labelled unlabeled cells."""
    if not shape["distill"]:
        return images, labels.astype(np.float32), 0
    distill, teacher = params["distill"], np.load(paths.TEACHER)
    wanted = data.mixed_targets(labels, teacher["train"], distill["soft_label_weight"])
    if not distill["unlabeled"]:
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
    config, seed = params["students"], params["seed"]
    if name not in config["shapes"]:
        raise UserError(f"--name {name}: not in `students.shapes` ({', '.join(config['shapes'])})")
    shape = config["shapes"][name]
    model_lib.seed_everything(seed)
    size = shape["image_size"]
    train, validation = data.load_split(paths.PREPARED, "train"), data.load_split(paths.PREPARED, "validation")
    labeled = data.resize_all(train[0], size)
    images, wanted, unlabeled = targets(params, shape, labeled, train[1])
    validation = (data.resize_all(validation[0], size), validation[1])
    started = time.perf_counter()
    live = training.open_live(paths.live_folder(f"students/{name}"))
    model = model_lib.build_classifier(
        size,
        "efficientnet_lite0",
        "bundled",
        config["dense_units"],
        config["dropout"],
        shape["stop_after_block"],
        params_lib.expand_keep_by_block(shape["expand_keep"]),
    )
    epochs_run = training.two_phase_fit(
        model,
        (images, wanted),
        validation,
        live,
        head_epochs=config["head_epochs"],
        head_learning_rate=config["head_learning_rate"],
        epochs=shape["epochs"],
        learning_rate=config["learning_rate"],
        fine_tune_from_block=shape["fine_tune_from_block"],
        early_stopping_patience=config["early_stopping_patience"],
        best_epoch_metric=params["train"]["best_epoch_metric"],
        learning_rate_floor=params["train"]["learning_rate_floor"],
        batch_size=config["batch_size"],
        augment=params["train"]["augment"],
        seed=seed,
        cache_frozen=config["cache_frozen"],
        frozen_runner=conversion.frozen_runner(
            config["frozen_runtime"], params["evaluate"]["num_threads"], config["batch_size"]
        ),
    )
    live.end()
    train_seconds = time.perf_counter() - started

    # Full-integer int8, calibrated on labeled training images; its decision threshold is chosen on validation with
    # LiteRT's reference kernels, the integer arithmetic TFLite Micro runs.
    representative = data.representative_images(labeled, params["convert"]["representative_samples"], seed)
    twin = None
    if shape["clusters"]:  # the unclustered twin's int8 validation AUC: what clustering may cost (`decisions.md`)
        twin_int8 = conversion.convert(model, "int8", representative)
        twin = {"int8_bytes": len(twin_int8), "int8_validation_roc_auc": _reference_auc(twin_int8, validation)}
        clustering.cluster_channels(model, shape["clusters"], config["cluster_min_weights"])
    started = time.perf_counter()
    flatbuffer = conversion.convert(model, "int8", representative)
    convert_seconds = time.perf_counter() - started
    tflite_file = paths.tflite_path(paths.student_model(name), "int8")
    write_bytes(tflite_file, flatbuffer)
    if twin:
        twin["clustered_int8_validation_roc_auc"] = _reference_auc(flatbuffer, validation)
    deployment = paths.patches_folder(paths.student_model(name))
    shutil.rmtree(deployment, ignore_errors=True)  # a stale deployment would be evaluated as this student's
    lut_min_saving = params["micro"]["lut_min_saving_bytes"]
    if shape["patches"]:
        # The deployment the boards are offered: the first blocks per patch, then the rest (`patch_models`).
        grid, block = shape["patches"]["grid"], shape["patches"]["through_block"]
        with atomic_path(deployment) as folder:
            folder.mkdir()
            plan = patch_models.convert_deployment(model, block, grid, representative, folder, lut_min_saving)
        unstripped, device_lut = (deployment / patching.BUNDLE_FILE).read_bytes(), plan["lut"]
        device = (deployment / patching.DEVICE_FILE).read_bytes()
        int8_validation = patching.predict(
            deployment,
            validation[0],
            lambda _, model: litert.part_runner(litert.reference_interpreter(model)),
            "int8 validation (patches)",
        )
    else:
        unstripped = flatbuffer
        device, kernels, _ = lut.device_model(flatbuffer, lut_min_saving)
        device_lut = lut.summary(kernels) if kernels else None
        write_bytes(paths.device_path(paths.student_model(name)), device)
        int8_validation = litert.predict(litert.reference_interpreter(tflite_file), validation[0], "int8 validation")
    float_validation = model_lib.predict(model, validation[0])
    float_threshold = scores.decision_threshold(float_validation, validation[1], params["threshold"])
    threshold = scores.decision_threshold(int8_validation, validation[1], params["threshold"])
    float_accuracy = scores.accuracy(validation[1], float_validation, float_threshold)
    int8_accuracy = scores.accuracy(validation[1], int8_validation, threshold)

    meta = {"variant": paths.variant_name(paths.student_model(name), "int8"), "threshold": threshold, **shape}
    with atomic_path(paths.keras_folder(paths.student_model(name))) as folder:
        folder.mkdir()
        model_lib.save_model(folder / paths.MODEL_FILE, model)
        write_json(folder / paths.META_FILE, meta)
    write_json(
        paths.convert_metrics_path(paths.student_model(name)),
        {
            "int8": {
                # The int8 file (or the blob of the patch-based deployment's parts), as the converter wrote it.
                "size_bytes": len(unstripped),
                "compressed_bytes": litert.compressed_size(unstripped),
                # What a board stores: that, stripped of what TFLM never reads, kernels as look-up-table indices where
                # that shrinks them (`lut`, summarised in `lut`; None: none did).
                "device_bytes": len(device),
                "lut": device_lut,
                # Clustering's cost on validation, whole-image int8 on LiteRT's reference kernels (None: unclustered).
                "clustering": twin and {**twin, "clusters": shape["clusters"]},
                "whole_image_size_bytes": len(flatbuffer),
                "convert_seconds": round(convert_seconds, 2),
                "representative_samples": len(representative),
            }
        },
    )
    write_json(
        paths.student_metrics_path(name),
        {
            **shape,
            "parameters": model.count_params(),
            "train_images": len(labeled),
            "unlabeled_images": unlabeled,
            "epochs_run": epochs_run,
            "validation": {
                "float_accuracy": float_accuracy,
                "int8_accuracy": int8_accuracy,
                # Post-training quantization's cost on validation; above 1 pp a student would need QAT.
                "int8_loss_pp": round(100 * (float_accuracy - int8_accuracy), 2),
            },
            "threshold": threshold,
            "train_seconds": round(train_seconds, 1),
        },
    )
    print(
        f"student {name}: validation accuracy float {float_accuracy:.4f}, int8 {int8_accuracy:.4f}; "
        f"{len(device):,} bytes" + (" in patches" if shape["patches"] else "")
    )


if __name__ == "__main__":
    run_stage(main)
