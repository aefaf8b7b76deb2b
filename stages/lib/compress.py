"""Pruning, clustering and quantization-aware training around tfmot, and measuring what they achieved."""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.quantization.keras.collab_opts.cluster_preserve.cluster_preserve_quantize_registry import (
    Default8bitClusterPreserveQuantizeRegistry,
)

PRUNING_UPDATES = 20  # how many times the mask is raised towards the target over the schedule
# The sparsity ramp ends halfway, leaving the second half of the fine-tune to recover at the target.
RAMP_FRACTION = 0.5


def prunable(layer: keras.layers.Layer) -> bool:
    """Conv2D and Dense layers; tfmot has no prunable weights in DepthwiseConv2D (a Conv2D subclass)."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and not isinstance(layer, keras.layers.DepthwiseConv2D)


def _clone_wrapping(model: keras.Model, wrap: Callable[[keras.layers.Layer], keras.layers.Layer], min_weights: int = 0) -> keras.Model:
    # Wrapping the whole model fails on layers tfmot does not know (Rescaling); returning the other
    # layers as they are keeps their trained weights and frozen flags.
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        return wrap(layer) if prunable(layer) and layer.kernel.shape.num_elements() >= min_weights else layer

    return keras.models.clone_model(model, clone_function=clone)


def pruning_schedule(target_sparsity: float, total_steps: int) -> tuple[Any, int]:
    """A polynomial schedule from 0 to the target that ends on a mask update within the steps actually run."""
    frequency = max(1, total_steps // PRUNING_UPDATES)
    end_step = max(frequency, frequency * int(RAMP_FRACTION * total_steps / frequency))
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target_sparsity, begin_step=0, end_step=end_step, frequency=frequency)
    return schedule, end_step


def prune(model: keras.Model, target_sparsity: float, total_steps: int, min_weights: int) -> keras.Model:
    """Wrap every Conv2D and Dense layer of at least `min_weights` weights in `prune_low_magnitude`.

    The thin early layers (the stem, the first blocks' 1x1 convolutions: under 2 % of the weights)
    carry every later feature; pruning them at 70 % collapsed the fine-tune in our runs.
    Train the result with `pruning_callbacks()`.
    """
    schedule, _ = pruning_schedule(target_sparsity, total_steps)
    return _clone_wrapping(model, lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule), min_weights)


def pruning_callbacks() -> list[keras.callbacks.Callback]:
    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip_pruning(model: keras.Model) -> keras.Model:
    return tfmot.sparsity.keras.strip_pruning(model)


def cluster(model: keras.Model, clusters: int, min_weights: int) -> keras.Model:
    """Sparsity-preserving weight clustering of the Conv2D and Dense layers that were pruned."""
    centroids = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS
    return _clone_wrapping(model, lambda layer: tfmot.clustering.keras.cluster_weights(
        layer, number_of_clusters=clusters, cluster_centroids_init=centroids, preserve_sparsity=True), min_weights)


def strip_clustering(model: keras.Model) -> keras.Model:
    return tfmot.clustering.keras.strip_clustering(model)


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
        return [tfmot.quantization.keras.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self) -> dict:
        return {}


class _PerLayerClusterPreserveRegistry(Default8bitClusterPreserveQuantizeRegistry):
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


def quantization_aware(model: keras.Model, preserve_clusters: bool) -> keras.Model:
    """Collaborative-optimization QAT: 8-bit fake quantization that keeps the zeros (and the clusters)."""
    if preserve_clusters:
        scheme = _PerLayerClusterPreserveScheme(preserve_sparsity=True)
    else:
        scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    # The 8-bit registries refuse Rescaling (our in-graph preprocessing), so it gets a config of its own.
    annotate = tfmot.quantization.keras.quantize_annotate_layer
    annotated = keras.models.clone_model(model, clone_function=lambda layer: annotate(
        layer, quantize_config=OutputOnlyQuantizeConfig() if isinstance(layer, keras.layers.Rescaling) else None))
    with tfmot.quantization.keras.quantize_scope({"OutputOnlyQuantizeConfig": OutputOnlyQuantizeConfig}):
        return tfmot.quantization.keras.quantize_apply(annotated, scheme)


ACTIVATION_RANGE_VARIABLES = ("output_min", "output_max", "post_activation_min", "post_activation_max")


def calibrate_activation_ranges(qat: keras.Model, float_model: keras.Model, images: np.ndarray, batch_size: int = 16) -> int:
    """Start every fake-quant activation range at what the float model's layer produces on `images`.

    tfmot starts each range at [-6, 6] and moves it 0.1 % per training step (an EMA with decay 0.999),
    so a short QAT fine-tune keeps ranges near [-6, 6] and clips the linear bottlenecks, which reach
    +-50 here: our first QAT model lost 6 pp that way. Post-training int8 calibrates on the same
    min/max over representative images; this gives QAT that starting point. Returns the ranges set.
    """
    ranges = {layer.layer.name: [v for v in layer.weights if v.name.split("/")[-1].split(":")[0] in ACTIVATION_RANGE_VARIABLES]
              for layer in qat.layers if hasattr(layer, "layer")}
    names = [name for name, variables in ranges.items() if variables]
    # A fresh copy: layers the tfmot clones shared with earlier models have several outputs, one per model.
    fresh = keras.models.clone_model(float_model)
    fresh.set_weights(float_model.get_weights())
    probe = keras.Model(fresh.inputs, [fresh.get_layer(name).output for name in names])
    low, high = np.full(len(names), np.inf), np.full(len(names), -np.inf)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        # A training-mode pass sets what tfmot takes from the data as it goes: the kernel ranges (from the
        # current weights) and the input range (min/max over all batches seen).
        qat(batch, training=True)
        outputs = probe(batch, training=False)
        low = np.minimum(low, [float(np.min(output)) for output in outputs])
        high = np.maximum(high, [float(np.max(output)) for output in outputs])
    for name, lo, hi in zip(names, low, high):
        for variable in ranges[name]:
            # TFLite needs 0 inside every range.
            value = max(hi, 0.0) if variable.name.split(":")[0].endswith("_max") else min(lo, 0.0)
            variable.assign(np.full(variable.shape, value, np.float32))
    return len(names)


def weight_sparsity(model: keras.Model) -> dict[str, float]:
    """Fraction of exactly-zero kernel weights per layer kind, over prunable layers, and over all kernels."""
    zeros: dict[str, int] = {}
    totals: dict[str, int] = {}
    for layer in model.layers:
        kind = "depthwise_conv2d" if isinstance(layer, keras.layers.DepthwiseConv2D) else "conv2d" if isinstance(layer, keras.layers.Conv2D) else "dense" if isinstance(layer, keras.layers.Dense) else None
        if kind is None:
            continue
        kernel = (layer.depthwise_kernel if kind == "depthwise_conv2d" else layer.kernel).numpy()
        zeros[kind] = zeros.get(kind, 0) + int((kernel == 0).sum())
        totals[kind] = totals.get(kind, 0) + kernel.size
    result = {kind: zeros[kind] / totals[kind] for kind in totals}
    prunable_kinds = [kind for kind in totals if kind != "depthwise_conv2d"]
    result["prunable"] = sum(zeros[k] for k in prunable_kinds) / max(1, sum(totals[k] for k in prunable_kinds))
    result["all_kernels"] = sum(zeros.values()) / max(1, sum(totals.values()))
    return result


def unique_weights(model: keras.Model, min_weights: int = 0) -> int:
    """The largest number of distinct values in one clustered kernel (a check that clustering held)."""
    return max(len(np.unique(layer.kernel.numpy())) for layer in model.layers if prunable(layer) and layer.kernel.shape.num_elements() >= min_weights)
