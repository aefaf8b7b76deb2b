"""Quantization-aware training with tfmot that preserves the zeros (and clusters), from calibrated ranges."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve import (
    cluster_preserve_quantize_registry as cluster_registry,
)
from tqdm import tqdm

from stages.lib.core.io import UserError

# tfmot's refusal names the layer: "Layer <name>:<class '...<Kind>'> is not supported."
UNSUPPORTED = re.compile(r"Layer (\S+):<class '[\w.]*?(\w+)'> is not supported")


class OutputOnlyQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
    """Fake-quantize a weightless layer's output to 8 bits (tfmot's API asks for a class)."""

    def get_weights_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def get_activations_and_quantizers(self, layer: keras.layers.Layer) -> list:
        return []

    def set_quantize_weights(self, layer: keras.layers.Layer, quantize_weights: list) -> None:
        pass

    def set_quantize_activations(self, layer: keras.layers.Layer, quantize_activations: list) -> None:
        pass

    def get_output_quantizers(self, layer: keras.layers.Layer) -> list:
        return [
            tfmot.quantization.keras.quantizers.MovingAverageQuantizer(
                num_bits=8, per_axis=False, symmetric=False, narrow_range=False
            )
        ]

    def get_config(self) -> dict:
        return {}


class _PerLayerClusterPreserveRegistry(cluster_registry.Default8bitClusterPreserveQuantizeRegistry):
    """tfmot's registry with one weight quantizer per layer instead of one shared by every layer of a kind.

    The shared quantizer turns sparsity preservation off for good (`self.preserve_sparsity = False`) as
    soon as it is built on a layer without zeros (our unpruned small layers), so the pruned layers after it
    lost their zeros in PCQAT: the head's Dense kernel went from 50 % zeros to none in the `.tflite`.
    """

    def get_quantize_config(self, layer: keras.layers.Layer) -> Any:
        config = super().get_quantize_config(layer)
        if getattr(config, "weight_quantizer", None) is not None:
            config.weight_quantizer = copy.copy(config.weight_quantizer)
        return config


class _PerLayerClusterPreserveScheme(tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme):
    """PCQAT's scheme on the per-layer registry above (tfmot takes a scheme object, so a class it is)."""

    def get_quantize_registry(self) -> Any:
        return _PerLayerClusterPreserveRegistry(self.preserve_sparsity)


@contextlib.contextmanager
def _kernel_wide_centroids() -> Iterator[None]:
    """Keep each kernel's clusters shared by all its channels, as `clustering.cluster` made them.

    tfmot switches a Conv2D to per-channel centroids whenever every output channel happens to hold all of the
    kernel's values. Its per-channel quantizer then builds the training graph one channel at a time: ~300,000
    ops for Lite0, 4-5 minutes of tracing before the first QAT step (measured), and centroids free to drift
    apart per channel, which undoes the "`clusters` values per kernel" the clustering stage made.
    """

    def kernel_wide(layer: Any, weight: Any, data_format: Any) -> tuple:
        centroids, index = cluster_registry.get_unique(weight)
        return centroids, tf.size(centroids), index, False

    original = cluster_registry.get_centroids
    cluster_registry.get_centroids = kernel_wide
    try:
        yield
    finally:
        cluster_registry.get_centroids = original


def quantization_aware(model: keras.Model, preserve_clusters: bool) -> keras.Model:
    """Collaborative-optimization QAT: 8-bit fake quantization that keeps the zeros (and the clusters)."""
    if preserve_clusters:
        scheme = _PerLayerClusterPreserveScheme(preserve_sparsity=True)
    else:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    # The 8-bit registries refuse Rescaling (our in-graph preprocessing), so it gets a config of its own.
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    annotated = keras.models.clone_model(
        model,
        clone_function=lambda layer: annotate(
            layer, quantize_config=OutputOnlyQuantizeConfig() if isinstance(layer, keras.layers.Rescaling) else None
        ),
    )
    with (
        tfmot.quantization.keras.quantize_scope({"OutputOnlyQuantizeConfig": OutputOnlyQuantizeConfig}),
        _kernel_wide_centroids(),
    ):
        quantized = tfmot.quantization.keras.quantize_apply(annotated, scheme)
    if preserve_clusters:
        RECOMPUTED.names |= recomputed_kernels(quantized)
        logging.getLogger("tensorflow").addFilter(RECOMPUTED)  # once: adding the same filter again does nothing
    return quantized


def check_quantizable(model: keras.Model, path: str | Path) -> None:
    """Refuse a model tfmot's quantization-aware training cannot wrap (what `deploy` does), naming the layer."""
    try:
        quantization_aware(model, preserve_clusters=False)
    except (ValueError, RuntimeError, TypeError) as error:
        found = UNSUPPORTED.search(str(error))
        problem = f"layer {found[1]!r} ({found[2]})" if found else " ".join(str(error).split())[:160]
        # tfmot folds a BatchNormalization into the Conv2D, DepthwiseConv2D or Dense right before it, and only then.
        hint = "; put it right after a Conv2D or Dense without activation" if "BatchNormalization" in problem else ""
        raise UserError(
            f"{path}: tfmot's quantization-aware training cannot quantize {problem}{hint} (docs/own-model.md)"
        ) from None


def recomputed_kernels(quantized: keras.Model) -> set[str]:
    """The kernels cluster-preserving QAT rebuilds from their centroids on every training step: tfmot's quantizer
    assigns centroids gathered by the pulling indices to the kernel (it trains `cluster_centroids_tf` and
    `ori_weights_vars_tf` instead), so the kernel itself never receives a gradient."""
    names = set()
    for layer in quantized.layers:
        weights = {w.name.split("/")[-1]: w for w in layer.weights}
        if "cluster_centroids_tf:0" in weights and "kernel:0" in weights:
            names.add(weights["kernel:0"].name)
    return names


class RecomputedKernels(logging.Filter):
    """Drops Keras's `Gradients do not exist for variables [...]` warning when it names only kernels that
    `recomputed_kernels` lists: by design, not a training bug. Any other variable without a gradient still warns."""

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Gradients do not exist for variables") or not record.args:
            return True
        return not set(record.args[0]) <= self.names


# The one filter every cluster-preserving QAT model adds its kernels to.
RECOMPUTED = RecomputedKernels(set())


def _variable_name(variable: Any) -> str:
    """`quant_block0_expand_relu/output_max:0` -> `output_max`."""
    return variable.name.split("/")[-1].split(":")[0]


ACTIVATION_RANGE_VARIABLES = ("output_min", "output_max", "post_activation_min", "post_activation_max")


def calibrate_activation_ranges(qat: keras.Model, float_model: keras.Model, images: np.ndarray, batch_size: int) -> int:
    """Start every fake-quant activation range at what the float model's layer produces on `images`.

    tfmot starts each range at [-6, 6] and moves it 0.1 % per training step (an EMA with decay 0.999),
    so a short QAT fine-tune keeps ranges near [-6, 6] and clips the linear bottlenecks, which reach
    +-50 here: our first QAT model lost 6 pp that way. Post-training int8 calibrates on the same
    min/max over representative images; this gives QAT that starting point. Returns the ranges set.
    """
    ranges = {
        layer.layer.name: [v for v in layer.weights if _variable_name(v) in ACTIVATION_RANGE_VARIABLES]
        for layer in qat.layers
        if hasattr(layer, "layer")
    }
    names = [name for name, variables in ranges.items() if variables]
    # A fresh copy: layers the tfmot clones shared with earlier models have several outputs, one per model.
    fresh = keras.models.clone_model(float_model)
    fresh.set_weights(float_model.get_weights())
    probe = keras.Model(fresh.inputs, [fresh.get_layer(name).output for name in names])
    low, high = np.full(len(names), np.inf), np.full(len(names), -np.inf)
    for start in tqdm(range(0, len(images), batch_size), desc="calibrate QAT ranges", unit="batch"):
        batch = images[start : start + batch_size].astype(np.float32)
        # A training-mode pass sets what tfmot takes from the data as it goes: the kernel ranges (from the
        # current weights) and the input range (min/max over all batches seen).
        qat(batch, training=True)
        outputs = probe(batch, training=False)
        low = np.minimum(low, [float(np.min(output)) for output in outputs])
        high = np.maximum(high, [float(np.max(output)) for output in outputs])
    for name, lo, hi in zip(names, low, high, strict=True):
        for variable in ranges[name]:
            # TFLite needs 0 inside every range.
            value = max(hi, 0.0) if _variable_name(variable).endswith("_max") else min(lo, 0.0)
            variable.assign(np.full(variable.shape, value, np.float32))
    return len(names)
