"""Stage `train`: transfer-learn the baseline classifier (head, then fine-tune); threshold chosen on validation."""

from __future__ import annotations

import time

import tf_keras as keras

from stages.lib import data, paths, scores, training
from stages.lib import model as model_lib
from stages.lib import params as params_lib
from stages.lib.io import atomic_path, run_stage, write_json


def main() -> None:
    params = params_lib.load()
    config, seed = params["train"], params["seed"]
    model_lib.seed_everything(seed)
    train, validation, test = (data.load_split(paths.PREPARED, split) for split in data.SPLITS)
    strategy = model_lib.distribution_strategy(config["strategy"])
    # The batch size in params is per replica; each step sees it on every device.
    batch_size = config["batch_size"] * strategy.num_replicas_in_sync
    weights = training.class_weights(params, train[1])
    common = dict(batch_size=batch_size, augment=config["augment"], seed=seed, class_weight=weights)
    started = time.perf_counter()
    live = training.open_live(paths.live_folder("train"))

    with strategy.scope():
        keys = ("backbone", "weights", "dense_units", "dropout", "stop_after_block")
        architecture = {key: params["model"][key] for key in keys}
        model = model_lib.build_classifier(train[0].shape[1], **architecture)
        # Phase 1: the head (and its BatchNormalization) learns on frozen ImageNet features.
        model_lib.set_trainable(model, from_block=None, head_batchnorm=True)
        if config["head_epochs"]:
            training.fit(
                model,
                train,
                validation,
                epochs=config["head_epochs"],
                learning_rate=config["head_learning_rate"],
                callbacks=[training.live_callback(live)],
                **common,
            )
        # Phase 2: fine-tune the upper backbone with a cosine schedule; keep the epoch with the best validation AUC.
        model_lib.set_trainable(model, from_block=config["fine_tune_from_block"])
        steps = config["epochs"] * training.steps_per_epoch(len(train[1]), batch_size)
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_auc", mode="max", patience=config["early_stopping_patience"], restore_best_weights=True
        )
        history = training.fit(
            model,
            train,
            validation,
            epochs=config["epochs"],
            learning_rate=training.cosine_schedule(config["learning_rate"], steps),
            callbacks=[training.live_callback(live), stopper],
            initial_epoch=config["head_epochs"],
            **common,
        )
    live.end()

    threshold, probabilities = model_lib.threshold_and_test_probabilities(model, validation, test[0])
    fine_tune_epochs = len(history.epoch)
    # EarlyStopping counts epochs from the first head epoch; report the kept one within fine-tuning (1-based).
    kept = stopper.best_weights is not None
    best_fine_tune_epoch = stopper.best_epoch - config["head_epochs"] + 1 if kept else fine_tune_epochs
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
            "epochs_run": {
                "head": config["head_epochs"],
                "fine_tune": fine_tune_epochs,
                "best_fine_tune_epoch": best_fine_tune_epoch,
            },
            "train_seconds": round(time.perf_counter() - started, 1),
        },
    )
    print(
        f"train: test accuracy {test_scores['accuracy']:.4f}, balanced {test_scores['balanced_accuracy']:.4f}, "
        f"threshold {threshold:.3f}"
    )


if __name__ == "__main__":
    run_stage(main)
