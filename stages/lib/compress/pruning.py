"""Magnitude pruning of Conv2D and Dense kernels with tfmot, and measuring the zeros it left."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras


def prunable(layer: keras.layers.Layer) -> bool:
    """Conv2D and Dense layers; tfmot has no prunable weights in DepthwiseConv2D (a Conv2D subclass)."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)) and not isinstance(
        layer, keras.layers.DepthwiseConv2D
    )


def large_enough(layer: keras.layers.Layer, min_weights: int) -> bool:
    """A prunable layer with at least `min_weights` kernel weights (the ones pruning and clustering touch)."""
    return prunable(layer) and layer.kernel.shape.num_elements() >= min_weights


def clone_wrapping(
    model: keras.Model, wrap: Callable[[keras.layers.Layer], keras.layers.Layer], min_weights: int = 0
) -> keras.Model:
    """`model` with `wrap` applied to its large prunable layers and every other layer kept as it is.

    Wrapping the whole model fails on layers tfmot does not know (Rescaling); returning the other layers
    as they are keeps their trained weights and frozen flags.
    """
    return keras.models.clone_model(
        model, clone_function=lambda layer: wrap(layer) if large_enough(layer, min_weights) else layer
    )


def frozen_prunable(model: keras.Model, min_weights: int) -> list[str]:
    """Layers pruning would touch but fine-tuning would not train: their masks would never recover."""
    return [layer.name for layer in model.layers if large_enough(layer, min_weights) and not layer.trainable]


def schedule(
    initial_sparsity: float,
    target_sparsity: float,
    total_steps: int,
    mask_updates: int,
    ramp_fraction: float,
    power: float,
) -> tuple[Any, int]:
    """A polynomial ramp (of `power`) from `initial_sparsity` (the zeros a chained model already has, or 0) to the
    target over `ramp_fraction` of the steps, in `mask_updates` raises, and the step it ends on.

    The ramp ends on a mask update within the steps actually run; the rest of the fine-tune recovers at the target.
    """
    frequency = max(1, total_steps // mask_updates)
    end_step = max(frequency, frequency * int(ramp_fraction * total_steps / frequency))
    polynomial = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity,
        final_sparsity=target_sparsity,
        begin_step=0,
        end_step=end_step,
        power=power,
        frequency=frequency,
    )
    return polynomial, end_step


def epochs_for(sparsity: float, epochs: int, epochs_per_10pp: int) -> int:
    """Fine-tune epochs at `sparsity`: `epochs` up to 50 %, plus `epochs_per_10pp` for every 10 points above it."""
    return epochs + epochs_per_10pp * max(0, round((sparsity - 0.5) * 10))


def steps(sweep: list[float], chain: bool, epochs: int, epochs_per_10pp: int) -> list[tuple[float, float, int]]:
    """(sparsity, starting sparsity, epochs) for each fine-tune of the sweep, lowest first.

    Chained, each starts from the sparsity below it and runs the epochs `epochs_for` adds between the two (at least
    one), so every model has had `epochs_for` its sparsity since the baseline; otherwise each starts from 0."""
    ordered = sorted(sweep)
    if not chain:
        return [(sparsity, 0.0, epochs_for(sparsity, epochs, epochs_per_10pp)) for sparsity in ordered]
    links, since_baseline = [], 0
    for sparsity, start in zip(ordered, [0.0, *ordered[:-1]], strict=True):
        epochs_link = max(1, epochs_for(sparsity, epochs, epochs_per_10pp) - since_baseline)
        links.append((sparsity, start, epochs_link))
        since_baseline += epochs_link
    return links


def keep_best_at_target(
    ramp_end_step: int, steps_per_epoch: int, epochs: int, monitor: str, mode: str
) -> keras.callbacks.EarlyStopping:
    """Keras' EarlyStopping that never stops and restores, at the end, the weights of the best epoch among those that
    ended with the masks at the target sparsity (the ramp over): an earlier, denser epoch is another sparsity's
    model."""
    first_at_target = -(-ramp_end_step // steps_per_epoch) - 1
    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=epochs, restore_best_weights=True, start_from_epoch=first_at_target
    )


def prune(model: keras.Model, polynomial: Any, min_weights: int) -> keras.Model:
    """Wrap every Conv2D and Dense layer of at least `min_weights` weights in `prune_low_magnitude`.

    The thin early layers (the stem, the first blocks' 1x1 convolutions: under 2 % of the weights)
    carry every later feature; pruning them at 70 % collapsed the fine-tune in our runs.
    `polynomial`: the sparsity schedule (`schedule`). Train the result with `callbacks()`.
    """
    return clone_wrapping(
        model, lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=polynomial), min_weights
    )


def callbacks() -> list[keras.callbacks.Callback]:
    return [tfmot.sparsity.keras.UpdatePruningStep()]


def strip(model: keras.Model) -> keras.Model:
    return tfmot.sparsity.keras.strip_pruning(model)


def _kernel_kind(layer: keras.layers.Layer) -> str | None:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise_conv2d"
    if isinstance(layer, keras.layers.Conv2D):
        return "conv2d"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def weight_sparsity(model: keras.Model) -> dict[str, float]:
    """Fraction of exactly-zero kernel weights per layer kind, over prunable layers, and over all kernels."""
    zeros: dict[str, int] = {}
    totals: dict[str, int] = {}
    for layer in model.layers:
        kind = _kernel_kind(layer)
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
    """The largest number of distinct values in one large prunable kernel (a check that clustering held)."""
    return max(len(np.unique(layer.kernel.numpy())) for layer in model.layers if large_enough(layer, min_weights))
