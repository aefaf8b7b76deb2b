"""Fitting shared by train, prune and deploy: compile, fit on seeded batches, log curves to DVCLive.

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


def steps_per_epoch(count: int, batch_size: int) -> int:
    return math.ceil(count / batch_size)


def cosine_schedule(learning_rate: float, steps: int) -> Any:
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps))


def class_weights(params: dict[str, Any], labels: np.ndarray) -> dict[int, float] | None:
    return data.class_weights(labels) if params["train"]["class_weight"] == "balanced" else None
