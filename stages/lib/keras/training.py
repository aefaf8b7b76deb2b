"""Fitting shared by train, prune, deploy and the students: compile, fit on seeded batches, log curves to DVCLive.

No compression code here: `train` imports this module, and editing tfmot code must not retrain the baseline."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tf_keras as keras
from dvclive import Live
from tqdm import tqdm

from stages.lib.core import data, scores
from stages.lib.keras import model as model_lib

# Images -> the frozen blocks' outputs; `FrozenRunner` makes one from the frozen part of a model.
Predict = Callable[[np.ndarray], np.ndarray]
FrozenRunner = Callable[[keras.Model], Predict]


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
    views_cached: bool = False,
) -> keras.callbacks.History:
    """Compile with Adam and binary (categorical, for a softmax head) cross-entropy, then fit for `epochs` more
    epochs. Labels become the head's targets (`data.targets`).

    `views_cached`: the training inputs are V x N x ... (`frozen_outputs`), one per dihedral view."""
    outputs = _compile(model, keras.optimizers.Adam(learning_rate))
    images, labels = train[0], data.targets(train[1], outputs)
    validation = (validation[0], data.targets(validation[1], outputs))
    dataset = data.training_dataset(images, labels, batch_size, augment, seed + initial_epoch, views_cached)
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


def _compile(model: keras.Model, optimizer: Any = "rmsprop") -> int:
    """Compile with the loss and metrics its output units call for (`model_lib.training_setup`); those units."""
    outputs = model_lib.outputs(model)
    loss, metrics = model_lib.training_setup(outputs)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return outputs


@dataclass(frozen=True)
class FitConfig:
    """How `two_phase_fit` trains (`train`'s and the students' settings).

    Phase 1 trains the head (and its BatchNormalization) on the frozen backbone for `head_epochs` at
    `head_learning_rate`. Phase 2 fine-tunes from `fine_tune_from_block` up for `epochs` with a cosine schedule from
    `learning_rate` down to `learning_rate_floor` x it, stops after `early_stopping_patience` epochs without progress
    and keeps the epoch with the best validation `best_epoch_metric`. `cache_frozen`: the blocks below
    `fine_tune_from_block` never train (and their BatchNormalization runs in inference mode), so they run once per
    image and view, and both phases train the layers above on their outputs."""

    head_epochs: int
    head_learning_rate: float
    epochs: int
    learning_rate: float
    fine_tune_from_block: int
    early_stopping_patience: int
    best_epoch_metric: str
    learning_rate_floor: float
    batch_size: int
    augment: bool
    seed: int
    class_weight: dict[int, float] | None = None
    cache_frozen: bool = False


def two_phase_fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    live: Live,
    config: FitConfig,
    frozen_runner: FrozenRunner | None = None,
) -> dict[str, int]:
    """Transfer learning in two phases (`FitConfig`); returns the epochs run and the kept fine-tune epoch (1-based).
    `frozen_runner` runs the cached frozen blocks (default: Keras)."""
    c = config
    # Block 16 (Lite0's `top` and the head only) has no block to split at: no cache.
    cached = c.cache_frozen and c.fine_tune_from_block > 0 and model_lib.has_block(model, c.fine_tune_from_block)
    fitted = model
    if cached:  # the upper part shares `model`'s layers: training it trains `model`
        lower, fitted = model_lib.split_at_block(model, c.fine_tune_from_block)
        predict = (frozen_runner or keras_runner(c.batch_size))(lower)
        train = (frozen_outputs(predict, train[0], c.augment), train[1])
        validation = (frozen_outputs(predict, validation[0], False)[0], validation[1])
    common = dict(
        batch_size=c.batch_size, augment=c.augment, seed=c.seed, class_weight=c.class_weight, views_cached=cached
    )
    model_lib.set_trainable(model, from_block=None, head_batchnorm=True)
    if c.head_epochs:
        fit(
            fitted,
            train,
            validation,
            epochs=c.head_epochs,
            learning_rate=c.head_learning_rate,
            callbacks=[live_callback(live)],
            **common,
        )
    model_lib.set_trainable(model, from_block=c.fine_tune_from_block)
    steps = c.epochs * steps_per_epoch(len(train[1]), c.batch_size)
    monitored, mode = monitor(c.best_epoch_metric)
    stopper = keras.callbacks.EarlyStopping(
        monitor=monitored, mode=mode, patience=c.early_stopping_patience, restore_best_weights=True
    )
    history = fit(
        fitted,
        train,
        validation,
        epochs=c.epochs,
        learning_rate=cosine_schedule(c.learning_rate, steps, c.learning_rate_floor),
        callbacks=[live_callback(live), stopper],
        initial_epoch=c.head_epochs,
        **common,
    )
    fine_tune = len(history.epoch)
    # EarlyStopping counts epochs from the first head epoch; report the kept one within fine-tuning.
    kept = stopper.best_weights is not None
    best = stopper.best_epoch - c.head_epochs + 1 if kept else fine_tune
    return {"head": c.head_epochs, "fine_tune": fine_tune, "best_fine_tune_epoch": best}


def log_validation(model: keras.Model, validation: tuple[np.ndarray, np.ndarray], live: Live) -> dict[str, int]:
    """Log a model that is not trained (a model of your own kept as it is): its validation loss, accuracy and AUC as
    one DVCLive step; no epochs run."""
    outputs = _compile(model)
    images, targets = validation[0].astype(np.float32), data.targets(validation[1], outputs).astype(np.float32)
    for name, value in model.evaluate(images, targets, verbose=0, return_dict=True).items():
        live.log_metric(f"validation/{name}", float(value))
    live.next_step()
    return {"head": 0, "fine_tune": 0, "best_fine_tune_epoch": 0}


def keras_runner(batch_size: int) -> FrozenRunner:
    """Run the frozen blocks as the Keras model they are."""
    return lambda lower: lambda images: lower.predict(images, batch_size=batch_size, verbose=0)


def frozen_outputs(predict: Predict, images: np.ndarray, augment: bool) -> np.ndarray:
    """V x N x ...: the frozen blocks' outputs for every image under each dihedral view (the image as it is without
    augment)."""
    views = tqdm(range(8 if augment else 1), desc="frozen blocks, once per view", unit="view", leave=False)
    return np.stack([predict(data.dihedral_view(images, v).astype(np.float32)) for v in views])


def steps_per_epoch(count: int, batch_size: int) -> int:
    return math.ceil(count / batch_size)


def cosine_schedule(learning_rate: float, steps: int, floor: float) -> Any:
    """Cosine decay from `learning_rate` to `floor` x it over `steps`."""
    return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=max(1, steps), alpha=floor)


def monitor(metric: str) -> tuple[str, str]:
    """The Keras log key and direction that pick the best epoch by `metric` (`train.best_epoch_metric`)."""
    return f"val_{metric}", "min" if metric == "loss" else "max"


def class_weights(class_weight: str | None, labels: np.ndarray) -> dict[int, float] | None:
    """`train.class_weight`: balanced weights from the labels, or none."""
    return data.class_weights(labels) if class_weight == "balanced" else None


def threshold_and_test_probabilities(
    model: keras.Model, validation: tuple[np.ndarray, np.ndarray], test_images: np.ndarray, config: dict[str, Any]
) -> tuple[float | None, np.ndarray]:
    """The decision threshold chosen on validation by params.yaml's `threshold` (None for more than two classes),
    and the test-split probabilities."""
    threshold = scores.decision_threshold(model_lib.predict(model, validation[0]), validation[1], config)
    return threshold, model_lib.predict(model, test_images)
