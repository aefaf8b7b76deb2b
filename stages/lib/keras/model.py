"""The classifier (backbone -> GlobalMaxPooling2D -> Dense -> BatchNorm -> Dropout -> sigmoid, or softmax over
three or more classes).

Build, freeze, save, load.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from stages.lib.core.io import UserError
from stages.lib.core.paths import META_FILE, MODEL_FILE, PROBABILITIES_FILE
from stages.lib.keras.backbones import backbone_features, load_lite0_weights

HEAD_LAYERS = ("head_pool", "head_dense", "head_bn", "head_relu", "head_dropout", "head_output")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """MirroredStrategy over all visible GPUs when asked (or `auto` with several), else the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def build_classifier(
    image_size: int,
    backbone: str,
    weights: str | None,
    dense_units: int,
    dropout: float,
    stop_after_block: int | None = None,
    expand_keep: dict[int, float] | None = None,
    classes: int = 2,
) -> keras.Model:
    """One flat functional model taking raw 0-255 pixels and returning P(class 1) (two classes: one sigmoid unit)
    or every class's probability (`classes` > 2: a softmax)."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    features = backbone_features(inputs, backbone, weights, stop_after_block, expand_keep)
    x = keras.layers.GlobalMaxPooling2D(name="head_pool")(features)
    x = keras.layers.Dense(dense_units, name="head_dense")(x)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)
    x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(*head_output(classes), name="head_output")(x)
    model = keras.Model(inputs, outputs, name=f"{backbone}_classifier")
    if backbone == "efficientnet_lite0" and weights == "bundled":
        load_lite0_weights(model)
    return model


def head_output(classes: int) -> tuple[int, str]:
    """The output layer's units and activation for `classes` classes."""
    return (1, "sigmoid") if classes == 2 else (classes, "softmax")


def outputs(model: keras.Model) -> int:
    """The model's output units: 1 (P(class 1)) or the number of classes."""
    return int(model.output_shape[-1])


def _block_index(name: str) -> int | None:
    match = re.match(r"block(\d+)[a-z]?_", name)
    return int(match.group(1)) if match else None


def set_trainable(
    model: keras.Model, from_block: int | None, head_batchnorm: bool = False, depthwise: bool = True
) -> None:
    """Train the head and, if `from_block` is set, the backbone from that block up (0: every layer); with
    `depthwise` false the depthwise kernels in that range stay as they are.

    Every backbone BatchNormalization stays frozen, which in Keras 2 also keeps it in inference
    mode: updating its statistics on small batches while fine-tuning wrecks the pretrained features.
    The head's BatchNormalization trains only when asked (on frozen features, in phase 1).
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = head_batchnorm and layer.name == "head_bn"
        elif layer.name in HEAD_LAYERS:
            layer.trainable = True
        elif from_block is None or (not depthwise and isinstance(layer, keras.layers.DepthwiseConv2D)):
            layer.trainable = False
        else:  # 0: every layer (the only meaning for a model of your own, which has no Lite0 blocks)
            block = _block_index(layer.name)
            in_range = from_block == 0 or (block is not None and block >= from_block)
            layer.trainable = in_range or layer.name.startswith("top")


def first_trained_block(own_model: bool, from_block: int) -> int:
    """`from_block` for Lite0; 0 (every layer) for a model of your own, which has no Lite0 blocks."""
    return 0 if own_model else from_block


def _first_layer(model: keras.Model, block: int) -> keras.layers.Layer | None:
    return next((layer for layer in model.layers if _block_index(layer.name) == block), None)


def has_block(model: keras.Model, block: int) -> bool:
    return _first_layer(model, block) is not None


def split_at_block(model: keras.Model, block: int) -> tuple[keras.Model, keras.Model]:
    """The layers below `block` and the rest, as two models over the same layer objects (training `upper` trains
    `model`): `upper(lower(x)) == model(x)`."""
    first = _first_layer(model, block)
    if first is None:
        raise UserError(f"{model.name} has no block {block} to split at")
    cut = first.input
    lower = keras.Model(model.inputs, cut, name=f"{model.name}_below_block{block}")
    inputs = keras.Input(cut.shape[1:], name=f"block{block}_input")
    tensors = {id(cut): inputs}
    pending = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    while pending:  # re-apply every layer whose inputs are all in the upper graph, until the output is reached
        ready = []
        for layer in pending:
            sources = layer.input if isinstance(layer.input, list) else [layer.input]
            if all(id(source) in tensors for source in sources):
                arguments = [tensors[id(source)] for source in sources]
                tensors[id(layer.output)] = layer(arguments if isinstance(layer.input, list) else arguments[0])
                ready.append(layer)
        if not ready:
            break
        pending = [layer for layer in pending if layer not in ready]
    upper = keras.Model(inputs, tensors[id(model.output)], name=f"{model.name}_from_block{block}")
    return lower, upper


class _HardTargets:
    """Score against the target rounded to 0/1: a distilled student's targets are soft (teacher x label), against
    which accuracy reads ~8 % and AUC 0. Hard labels (validation, labels-only training) pass unchanged."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        return super().update_state(tf.round(y_true), y_pred, sample_weight)


class HardTargetAccuracy(_HardTargets, keras.metrics.BinaryAccuracy):
    pass


class HardTargetAUC(_HardTargets, keras.metrics.AUC):
    pass


class HardClassAUC(keras.metrics.AUC):
    """The macro one-vs-rest AUC against each target row's most probable class (soft targets made hard)."""

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        hard = tf.one_hot(tf.argmax(y_true, axis=-1), self.num_labels)
        return super().update_state(hard, y_pred, sample_weight)


def binary_metrics() -> list[Any]:
    return [HardTargetAccuracy(name="accuracy"), HardTargetAUC(name="auc")]


def training_setup(outputs: int) -> tuple[str, list[Any]]:
    """The loss and the metrics (`accuracy`, `auc`) a head of `outputs` units trains with."""
    if outputs == 1:
        return "binary_crossentropy", binary_metrics()
    auc = HardClassAUC(name="auc", multi_label=True, num_labels=outputs)
    return "categorical_crossentropy", [keras.metrics.CategoricalAccuracy(name="accuracy"), auc]


def predict(model: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """P(class 1) per image (a vector), or every class's probability (N x K) for a softmax head."""
    probabilities = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return probabilities.reshape(-1) if probabilities.shape[-1] == 1 else probabilities


def save(folder: Path, model: keras.Model, meta: dict[str, Any], test_probabilities: np.ndarray) -> None:
    """Write a model folder: the Keras model, its metadata (threshold, ...) and its test-split probabilities."""
    save_model(folder / MODEL_FILE, model)
    save_predictions(folder, meta, test_probabilities)


def save_model(path: Path, model: keras.Model) -> None:
    """The `.keras` file without the optimizer: every stage that trains on compiles anew, and Adam's two slots per
    weight tripled the baseline's file (44 MB) and its load time (16 s instead of 2 s).

    The native format has no `include_optimizer`: an uncompiled functional model over the same layers is saved."""
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)


def save_predictions(folder: Path, meta: dict[str, Any], test_probabilities: np.ndarray) -> None:
    """The part of a model folder evaluation reads: metadata and test-split probabilities.

    The QAT model has no Keras file.
    """
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    np.save(folder / PROBABILITIES_FILE, test_probabilities)


def load(folder: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """Load a model folder written by `save`, uncompiled and in safe mode (no arbitrary code in the file runs)."""
    path = Path(folder) / MODEL_FILE
    if not path.exists():
        raise UserError(f"{path} is missing; run the stage that makes it (`dvc repro`)")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as error:
        raise UserError(
            f"{path} is not a readable .keras model ({error}); remake it with `dvc repro --force`"
        ) from error
    return model, json.loads((Path(folder) / META_FILE).read_text())
