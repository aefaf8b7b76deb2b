"""Stage `deploy`: the model we ship. Start from `pruned/<prune.sparsity>`, optionally cluster, then
sparsity-preserving quantization-aware training and full-integer int8 conversion."""

from __future__ import annotations

from typing import Any

from stages.lib.compress import clustering, pruning, qat
from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import atomic_path, run_stage, write_bytes, write_json
from stages.lib.keras import conversion, training
from stages.lib.keras import model as model_lib
from stages.lib.runtime import litert


def main() -> None:
    params = params_lib.load()
    config, seed, sparsity = params.deploy, params.seed, params.prune.sparsity
    min_weights = params.prune.min_layer_weights  # read whatever the method: the stage declares it
    model_lib.seed_everything(seed)
    train, validation, test = (data.load_split(paths.PREPARED, split) for split in data.SPLITS)
    # The pruned model of the sweep: `prune.sparsity` must be one of `prune.sweep` (checked on load).
    model, _ = model_lib.load(paths.keras_folder(paths.pruned_model(sparsity)))
    pruned_sparsity = pruning.weight_sparsity(model)
    fit_args = dict(
        batch_size=params.train.batch_size,
        augment=params.train.augment,
        seed=seed,
        class_weight=training.class_weights(params.train.class_weight, train[1]),
        learning_rate=config.learning_rate,
    )
    unique_weights = None
    if config.method == "pcqat":
        # Sparsity-preserving clustering: each kernel keeps its zeros and takes at most `clusters` other values.
        clustered = clustering.cluster(model, config.clusters, min_weights)
        if config.cluster_epochs:
            fit_logged(clustered, "deploy/cluster", config.cluster_epochs, train, validation, fit_args)
        model = clustering.strip(clustered)
        unique_weights = pruning.unique_weights(model, min_weights)
    quantized = qat.quantization_aware(model, preserve_clusters=config.method == "pcqat")
    # The int8 calibration images, also QAT's starting activation ranges (tfmot's own start, [-6, 6], cost 6 pp).
    representative = data.representative_images(train[0], params.convert.representative_samples, seed)
    qat.calibrate_activation_ranges(quantized, model, representative, config.calibration_batch)
    calibrated = training.threshold_and_test_probabilities(quantized, validation, test[0], params.threshold)
    fit_logged(quantized, "deploy/qat", config.qat_epochs, train, validation, fit_args)
    threshold, probabilities = training.threshold_and_test_probabilities(
        quantized, validation, test[0], params.threshold
    )
    flatbuffer = conversion.convert(quantized, "int8", representative)
    write_bytes(paths.tflite_path("deploy", "int8"), flatbuffer)
    with atomic_path(paths.keras_folder("deploy")) as folder:
        folder.mkdir()
        meta = {"variant": "deploy", "method": config.method, "threshold": threshold, "sparsity_target": sparsity}
        model_lib.save_predictions(folder, meta, probabilities)
    qat_accuracy = scores.accuracy(test[1], probabilities, threshold)
    write_json(
        paths.DEPLOY_METRICS,
        {
            "method": config.method,
            "sparsity_target": sparsity,
            "sparsity_after_pruning": pruned_sparsity,
            "max_unique_weights_per_kernel": unique_weights,
            # What QAT training adds to the calibrated starting point (each at its own validation threshold).
            "calibrated_keras_test_accuracy": scores.accuracy(test[1], calibrated[1], calibrated[0]),
            "qat_keras_test_accuracy": qat_accuracy,
            "size_bytes": len(flatbuffer),
            "compressed_bytes": litert.compressed_size(flatbuffer),
        },
    )
    print(f"deploy: {config.method} at {sparsity}: QAT test accuracy {qat_accuracy:.4f}, {len(flatbuffer):,} bytes")


def fit_logged(model: Any, name: str, epochs: int, train: tuple, validation: tuple, fit_args: dict[str, Any]) -> None:
    """Train `model` for `epochs`, each epoch's Keras logs a DVCLive step under dvclive/`name`."""
    live = training.open_live(paths.live_folder(name))
    training.fit(model, train, validation, epochs=epochs, callbacks=[training.live_callback(live)], **fit_args)
    live.end()


if __name__ == "__main__":
    run_stage(main)
