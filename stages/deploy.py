"""Stage `deploy`: the model we ship. Prune to `prune.sparsity`, optionally cluster, then sparsity-preserving
quantization-aware training and full-integer int8 conversion."""
from __future__ import annotations

from stages.lib import compress, data, model as model_lib, params as params_lib, scores, tflite, training, variants
from stages.lib.io import atomic_path, run_stage, write_bytes, write_json

PREPARED, METRICS, LIVE = "data/prepared", "metrics/deploy.json", "plots/deploy"


def main() -> None:
    params = params_lib.load()
    config, seed, sparsity = params["deploy"], params["seed"], params["prune"]["sparsity"]
    train, validation, test = (data.load_split(PREPARED, split) for split in data.SPLITS)
    model, pruned_sparsity = training.prune_baseline(params, sparsity, f"{LIVE}/prune")
    fit_args = dict(batch_size=params["train"]["batch_size"], augment=params["train"]["augment"], seed=seed,
                    class_weight=training.class_weights(params, train[1]))
    unique_weights = None
    if config["method"] == "pcqat":
        # Sparsity-preserving clustering: each kernel keeps its zeros and takes at most `clusters` other values.
        min_weights = params["prune"]["min_layer_weights"]
        clustered = compress.cluster(model, config["clusters"], min_weights)
        live = training.open_live(f"{LIVE}/cluster")
        training.fit(clustered, train, validation, epochs=1, learning_rate=config["learning_rate"], callbacks=[training.live_callback(live)], **fit_args)
        live.end()
        model = compress.strip_clustering(clustered)
        unique_weights = compress.unique_weights(model, min_weights)
    qat = compress.quantization_aware(model, preserve_clusters=config["method"] == "pcqat")
    # The int8 calibration images, also QAT's starting activation ranges (tfmot's own start, [-6, 6], cost 6 pp).
    representative = data.representative_images(train[0], params["convert"]["representative_samples"], seed)
    compress.calibrate_activation_ranges(qat, model, representative)
    calibrated = model_lib.threshold_and_test_probabilities(qat, validation, test[0])
    live = training.open_live(f"{LIVE}/qat")
    training.fit(qat, train, validation, epochs=config["qat_epochs"], learning_rate=config["learning_rate"], callbacks=[training.live_callback(live)], **fit_args)
    live.end()

    threshold, probabilities = model_lib.threshold_and_test_probabilities(qat, validation, test[0])
    flatbuffer = tflite.convert(qat, "int8", representative)
    tflite_file = variants.tflite_path("deploy", "int8")
    write_bytes(tflite_file, flatbuffer)
    with atomic_path(variants.keras_folder("deploy")) as folder:
        folder.mkdir()
        meta = {"variant": "deploy", "method": config["method"], "threshold": threshold, "sparsity_target": sparsity}
        model_lib.save_predictions(folder, meta, probabilities)
    qat_scores = scores.classification_scores(test[1], probabilities, threshold)
    write_json(METRICS, {
        "method": config["method"],
        "sparsity_target": sparsity,
        "sparsity_after_pruning": pruned_sparsity,
        "sparsity_in_tflite": tflite.tflite_weight_sparsity(tflite_file),
        "max_unique_weights_per_kernel": unique_weights,
        # What QAT training adds to the calibrated starting point (each at its own validation threshold).
        "calibrated_keras_test_accuracy": scores.classification_scores(test[1], calibrated[1], calibrated[0])["accuracy"],
        "qat_keras_test_accuracy": qat_scores["accuracy"],
        "size_bytes": len(flatbuffer),
        "compressed_bytes": tflite.compressed_size(flatbuffer),
    })
    print(f"deploy: {config['method']} at {sparsity}: QAT test accuracy {qat_scores['accuracy']:.4f}, {len(flatbuffer):,} bytes")


if __name__ == "__main__":
    run_stage(main)
