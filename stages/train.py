"""Stage `train`: transfer-learn the baseline classifier (head, then fine-tune), or take a model of your own
(`model.file`, optionally fine-tuned); threshold chosen on validation."""

from __future__ import annotations

import time

from stages.lib.core import data, paths, scores
from stages.lib.core import params as params_lib
from stages.lib.core.io import atomic_path, run_stage, write_json
from stages.lib.keras import conversion, own_model, training
from stages.lib.keras import model as model_lib


def main() -> None:
    params = params_lib.load()
    config, seed = params.train, params.seed
    model_lib.seed_everything(seed)
    train, validation, test = (data.load_split(paths.PREPARED, split) for split in data.SPLITS)
    strategy = model_lib.distribution_strategy(config.strategy)
    # The batch size in params is per replica; each step sees it on every device.
    batch_size = config.batch_size * strategy.num_replicas_in_sync
    started = time.perf_counter()
    live = training.open_live(paths.live_folder("train"))

    with strategy.scope():
        architecture, own = params.model, params.model.file
        if own:  # checked by `prepare`; its first layer scales raw pixels as the file's model expects
            model = own_model.flat_with_scaling(own_model.read(own), train[0].shape[1], architecture.input_scaling)
        else:
            model = model_lib.build_classifier(
                train[0].shape[1],
                architecture.backbone,
                architecture.weights,
                architecture.dense_units,
                architecture.dropout,
                architecture.stop_after_block,
                classes=len(data.load_classes(paths.PREPARED)),
            )
        if own and not architecture.fine_tune:
            epochs_run = training.log_validation(model, validation, live)
        else:  # a model of your own has no head to train first: every layer fine-tunes (BatchNormalization frozen)
            fit_config = training.FitConfig(
                head_epochs=0 if own else config.head_epochs,
                head_learning_rate=config.head_learning_rate,
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                fine_tune_from_block=model_lib.first_trained_block(bool(own), config.fine_tune_from_block),
                early_stopping_patience=config.early_stopping_patience,
                best_epoch_metric=config.best_epoch_metric,
                learning_rate_floor=config.learning_rate_floor,
                batch_size=batch_size,
                augment=config.augment,
                seed=seed,
                class_weight=training.class_weights(config.class_weight, train[1]),
                cache_frozen=config.cache_frozen,
            )
            runner = conversion.frozen_runner(config.frozen_runtime, params.evaluate.num_threads, config.batch_size)
            epochs_run = training.two_phase_fit(model, train, validation, live, fit_config, runner)
    live.end()

    threshold, probabilities = training.threshold_and_test_probabilities(model, validation, test[0], params.threshold)
    test_scores = scores.classification_scores(test[1], probabilities, threshold)
    meta = {"variant": "baseline", "threshold": threshold, "sparsity_target": 0.0}
    with atomic_path(paths.keras_folder("baseline")) as folder:
        folder.mkdir()
        model_lib.save(folder, model, meta, probabilities)
    write_json(
        paths.TRAIN_METRICS,
        {
            "test": test_scores,
            "threshold": threshold,
            "epochs_run": epochs_run,
            "train_seconds": round(time.perf_counter() - started, 1),
        },
    )
    decision = f"threshold {threshold:.3f}" if threshold is not None else "argmax"
    accuracy, balanced = test_scores["accuracy"], test_scores["balanced_accuracy"]
    print(f"train: test accuracy {accuracy:.4f}, balanced {balanced:.4f}, {decision}")


if __name__ == "__main__":
    run_stage(main)
