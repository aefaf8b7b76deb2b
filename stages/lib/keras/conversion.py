"""Keras to TFLite: the four formats the report compares, and TFLite's sparse encoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import lite
from tensorflow.lite.python.convert import mlir_sparsify
from tqdm import tqdm

from stages.lib.runtime import litert


def convert(model: Any, fmt: str, representative: np.ndarray | None = None, sparse: bool = False) -> bytes:
    """Convert a Keras model to one TFLite format: float32, float16, dynamic (int8 weights) or int8 (full integer).

    The model is traced for one image (what a device and `evaluate` feed it) and converted from that function.
    The converter writes its trackable object to a temporary SavedModel; handing it a plain `tf.Module` that holds
    the variables instead of the Keras model skips Keras's layer-by-layer serialization (4 s instead of 17-34 s
    per conversion of the baseline, byte-identical output)."""
    signature = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")
    function = tf.function(lambda image: model(image, training=False)).get_concrete_function(signature)
    variables = tf.Module()
    variables.held = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], variables)
    if fmt == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif fmt == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif fmt == "int8":
        if representative is None or not len(representative):
            raise ValueError("full-integer int8 conversion needs representative images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [image[None].astype(np.float32)] for image in tqdm(representative, desc="int8 calibration", unit="image")
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif fmt != "float32":
        raise ValueError(f"unknown TFLite format {fmt!r}")
    if sparse:
        converter.optimizations = list(converter.optimizations) + [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    return converter.convert()


def sparsify(flatbuffer: bytes) -> bytes:
    """TFLite's sparse tensor encoding of a converted model, without converting (and calibrating) it again.

    The converter's `EXPERIMENTAL_SPARSITY` runs these same two passes on its finished model, so the tensors and
    buffers are those of `convert(..., sparse=True)`; only the conversion metadata does not list the option."""
    return lite._deduplicate_readonly_buffers(mlir_sparsify(flatbuffer))


def frozen_runner(runtime: str, num_threads: int, batch_size: int) -> Callable[[Any], Callable] | None:
    """What computes a stage's frozen-block cache (`train.frozen_runtime`, `students.frozen_runtime`); None: Keras,
    `training`'s default."""
    return litert_runner(num_threads, batch_size) if runtime == "litert" else None


def litert_runner(num_threads: int, batch_size: int) -> Callable[[Any], Callable[[np.ndarray], np.ndarray]]:
    """Run a model's frozen blocks as their float32 `.tflite` on LiteRT (XNNPACK): on 2 cores 3.4x faster than Keras
    on b10_96's cache (2.4x counting the conversion; `students.frozen_runtime`), outputs within ~4e-4 of Keras's."""

    def runner(lower: Any) -> Callable[[np.ndarray], np.ndarray]:
        content = convert(lower, "float32")
        return lambda images: litert.batch_outputs(content, images, num_threads, batch_size)

    return runner
