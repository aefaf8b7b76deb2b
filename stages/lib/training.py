"""Fitting shared by train, prune, deploy and the students: compile, fit on seeded batches, log curves to DVCLive.

No compression code here: `train` imports this module, and editing tfmot code must not retrain the baseline."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import tf_keras as keras
from dvclive import Live

from stages.lib import data
from stages.lib import model as model_lib


def open_live(folder: str | Path) -> Live:
    """A DVCLive logger that never rewrites dvc.yaml nor creates experiments behind DVC's back."""
    return Live(folder, dvcyaml=None, save_dvc_exp=False, report=None)


def live_callback(live: Live) -> keras.callbacks.Callback:
    """Log every epoch's Keras logs (loss, accuracy, auc, val_*) as one DVCLive step."""

    def log_epoch(_epoch: int, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            split = "validation" if name.startswith("val_") else "train"
            live.log_metric(f"{split}/{name.removeprefix('val_')}", float(value))
        live.next_step()

    return keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)


def fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    learning_rate: float | Any,
    batch_size: int,
    augment: bool,
    seed: int,
    callbacks: list[keras.callbacks.Callback],
    class_weight: dict[int, float] | None = None,
    initial_epoch: int = 0,
) -> keras.callbacks.History:
    """Compile with Adam and binary cross-entropy, then fit for `epochs` more epochs."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=model_lib.binary_metrics()
    )
    images, labels = train
    dataset = data.training_dataset(images, labels, batch_size, augment, seed + initial_epoch)
    return model.fit(
        dataset,
        steps_per_epoch=steps_per_epoch(len(labels), batch_size),
        validation_data=(validation[0].astype(np.float32), validation[1].astype(np.float32)),
        validation_batch_size=batch_size,
        epochs=initial_epoch + epochs,
        initial_epoch=initial_epoch,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=2,
    )


def two_phase_fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    live: Live,
    *,
    head_epochs: int,
    head_learning_rate: float,
    epochs: int,
    learning_rate: float,
    fine_tune_from_block: int,
    early_stopping_patience: int,
    batch_size: int,
    augment: bool,
    seed: int,
    class_weight: dict[int, float] | None = None,
) -> dict[str, int]:
    """Transfer learning in two phases; returns the epochs run and the kept fine-tune epoch (1-based).

    Phase 1 trains the head (and its BatchNormalization) on the frozen backbone. Phase 2 fine-tunes from
    `fine_tune_from_block` up with a cosine schedule and keeps the epoch with the best validation AUC.
    """
    common = dict(batch_size=batch_size, augment=augment, seed=seed, class_weight=class_weight)
    model_lib.set_trainable(model, from_block=None, head_batchnorm=True)
    if head_epochs:
        fit(
            model,
            train,
            validation,
            epochs=head_epochs,
            learning_rate=head_learning_rate,
            callbacks=[live_callback(live)],
            **common,
        )
    model_lib.set_trainable(model, from_block=fine_tune_from_block)
    steps = epochs * steps_per_epoch(len(train[1]), batch_size)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_auc", mode="max", patience=early_stopping_patience, restore_best_weights=True
    )
    history = fit(
        model,
        train,
        validation,
        epochs=epochs,
        learning_rate=cosine_schedule(learning_rate, steps),
        callbacks=[live_callback(live), stopper],
        initial_epoch=head_epochs,
        **common,
    )
    fine_tune = len(history.epoch)
    # EarlyStopping counts epochs from the first head epoch; report the kept one within fine-tuning.
    kept = stopper.best_weights is not None
    best = stopper.best_epoch - head_epochs + 1 if kept else fine_tune
    return {"head": head_epochs, "fine_tune": fine_tune, "best_fine_tune_epoch": best}


def steps_per_epoch(count: int, batch_size: int) -> int:
    return math.ceil(count / batch_size)


def cosine_schedule(learning_rate: float, steps: int) -> Any:
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))


def class_weights(params: dict[str, Any], labels: np.ndarray) -> dict[int, float] | None:
    return data.class_weights(labels) if params["train"]["class_weight"] == "balanced" else None
