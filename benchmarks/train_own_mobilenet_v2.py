"""Train the "model of your own" the record in benchmarks/results/tasks/own_mobilenet_v2.json starts from: a
MobileNetV2 (alpha 0.35, 96 x 96, random initial weights: Keras' ImageNet weights are a download) on elpv's default
task, on the pipeline's own training split, the epoch kept by validation AUC (the test split is never read). Saved by
tf-keras with inputs scaled to -1..1 (`model.input_scaling: -1-1`).

Usage (after `dvc repro prepare` at the default params, whose split is the record's: it depends on the images'
content, not their size):
    python benchmarks/train_own_mobilenet_v2.py models/own/mobilenet_v2_elpv.keras [--epochs 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import tf_keras as keras  # noqa: E402

import stages  # noqa: E402,F401  (the Keras 2 switch)
from stages.lib.core import data, paths  # noqa: E402
from stages.lib.keras import model as model_lib  # noqa: E402
from stages.lib.keras import training  # noqa: E402

SIZE, ALPHA, BATCH, SEED = 96, 0.35, 32, 42


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    args = parser.parse_args()
    model_lib.seed_everything(SEED)
    (images, labels), (val_images, val_labels) = (data.load_split(paths.PREPARED, s) for s in ("train", "validation"))
    resize = lambda batch: np.stack([data.resize(image, SIZE) for image in batch])  # noqa: E731
    scale = lambda batch: batch.astype(np.float32) / 127.5 - 1  # noqa: E731  (-1..1)
    train, validation = (scale(resize(images)), labels), (scale(resize(val_images)), val_labels)
    model = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), alpha=ALPHA, weights=None, classes=1, classifier_activation="sigmoid"
    )
    # Keras' MobileNetV2 keeps BatchNormalization statistics with momentum 0.999, made for ImageNet's 40,000 steps an
    # epoch: over elpv's 49 the inference statistics lag so far behind that validation read a constant (AUC 0.5 for
    # the first 7 epochs, measured). 0.9 follows the weights.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    started = time.perf_counter()
    steps = training.steps_per_epoch(len(labels), BATCH) * args.epochs
    keep = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=args.epochs, restore_best_weights=True)
    history = training.fit(
        model,
        train,
        validation,
        epochs=args.epochs,
        learning_rate=training.cosine_schedule(args.learning_rate, steps, 0.0),
        batch_size=BATCH,
        augment=True,
        seed=SEED,
        callbacks=[keep],
        class_weight=data.class_weights(labels),
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    keras.Model(model.inputs, model.outputs, name="mobilenet_v2_elpv").save(args.output)
    best = int(np.argmax(history.history["val_auc"]))
    print(
        json.dumps(
            {
                "file": str(args.output),
                "epochs": args.epochs,
                "kept_epoch": best + 1,
                "validation_auc": round(float(history.history["val_auc"][best]), 4),
                "validation_accuracy": round(float(history.history["val_accuracy"][best]), 4),
                "train_seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
