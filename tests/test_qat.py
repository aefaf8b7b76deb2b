"""Clustering and quantization-aware training on a pruned real classifier: zeros and clusters survive."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from conftest import copy_model, fit_briefly
from stages.lib.compress import clustering, pruning, qat


def test_clustering_keeps_sparsity_and_limits_values(pruned, elpv_images):
    clustered = clustering.cluster(copy_model(pruned), clusters=4, min_weights=0)
    fit_briefly(clustered, *elpv_images, epochs=1)
    stripped = clustering.strip(clustered)
    assert pruning.unique_weights(stripped) <= 4 + 1  # 4 centroids, plus the preserved zero
    assert pruning.weight_sparsity(stripped)["prunable"] >= 0.59


def test_prune_preserving_qat_keeps_zeros(pruned, elpv_images):
    model = qat.quantization_aware(copy_model(pruned), preserve_clusters=False)
    fit_briefly(model, *elpv_images, epochs=1)
    kernels = [w.numpy() for w in model.weights if w.name.endswith("kernel:0") and "dw_conv" not in w.name]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros >= 0.59


def test_calibration_starts_qat_at_the_float_ranges(pruned, elpv_images):
    images = elpv_images[0].astype(np.float32)
    model = qat.quantization_aware(copy_model(pruned), preserve_clusters=False)
    ranges = [w for w in model.weights if w.name.endswith("output_max:0")]
    assert ranges and {float(w.numpy()) for w in ranges} == {6.0}  # tfmot's starting range, whatever the layer
    uncalibrated = np.abs(model(images, training=False).numpy() - pruned(images).numpy()).mean()

    assert qat.calibrate_activation_ranges(model, pruned, images, 16) >= len(ranges)
    fresh = copy_model(pruned)  # its own layers: `pruned` shares some with the models it was cloned from
    bottleneck = keras.Model(fresh.inputs, fresh.get_layer("block1_project_bn").output)(images).numpy()
    layer = model.get_layer("quant_block1_project_bn")
    calibrated = {w.name.split("/")[-1].split(":")[0]: float(w.numpy()) for w in layer.weights if "output_m" in w.name}
    assert calibrated == pytest.approx({"output_min": min(bottleneck.min(), 0), "output_max": max(bottleneck.max(), 0)})
    # Calibrated but untrained, the fake-quantized model already predicts close to the float one, and closer than
    # from tfmot's [-6, 6] start.
    error = np.abs(model(images, training=False).numpy() - pruned(images).numpy()).mean()
    print(f"mean |QAT - float| calibrated {error:.4f}, uncalibrated {uncalibrated:.4f}")
    assert error < 0.1 and error < uncalibrated


def test_cluster_preserving_qat_keeps_zeros_beside_dense_layers(pruned, elpv_images):
    clustered = clustering.cluster(copy_model(pruned), clusters=4, min_weights=0)
    fit_briefly(clustered, *elpv_images, epochs=1)
    stripped = clustering.strip(clustered)
    # One layer without zeros, as our unpruned small layers are: in tfmot's own registry it switched
    # sparsity preservation off for every layer sharing its quantizer.
    stem = stripped.get_layer("stem_conv")
    stem.kernel.assign(np.where(stem.kernel.numpy() == 0, 1e-3, stem.kernel.numpy()))
    model = qat.quantization_aware(stripped, preserve_clusters=True)
    fit_briefly(model, *elpv_images, epochs=1)
    for layer in model.layers:
        if hasattr(layer, "layer") and pruning.prunable(layer.layer) and layer.layer.name != "stem_conv":
            kernel = next(w.numpy() for w in layer.weights if w.name.split("/")[-1] == "kernel:0")
            assert (kernel == 0).mean() >= 0.55, layer.name
            # Clusters stay kernel-wide (one centroid vector per kernel, as clustering made them), not one per
            # output channel: no more than the 4 centroids and the zero in the whole kernel after training.
            centroids = [w for w in layer.weights if w.name.split("/")[-1] == "cluster_centroids_tf:0"]
            if centroids:
                assert len(centroids[0].shape) == 1, layer.name
                assert len(np.unique(kernel)) <= 4 + 1, layer.name


def test_cluster_preserving_qat_keeps_a_kernels_clusters_shared_by_its_channels(pruned, elpv_images):
    """When every output channel holds all of the kernel's values, tfmot switched to per-channel centroids (a
    channel-by-channel training graph: minutes of tracing on Lite0); ours stay one vector per kernel."""
    clustered = clustering.cluster(copy_model(pruned), clusters=4, min_weights=0)
    stripped = clustering.strip(clustered)
    layer = next(layer for layer in stripped.layers if isinstance(layer, keras.layers.Conv2D) and layer.filters >= 8)
    values = np.resize(np.array([0.0, -0.2, -0.1, 0.1, 0.2], np.float32), layer.kernel.shape[:-1] + (1,))
    layer.kernel.assign(np.repeat(values, layer.kernel.shape[-1], axis=-1))  # every channel holds all 5 values
    model = qat.quantization_aware(stripped, preserve_clusters=True)
    wrapper = model.get_layer(f"quant_{layer.name}")
    centroids = next(w for w in wrapper.weights if w.name.split("/")[-1] == "cluster_centroids_tf:0")
    assert centroids.shape == (5,)


def test_the_gradient_warning_of_cluster_preserving_qat_names_only_recomputed_kernels(pruned, elpv_images):
    """tfmot rebuilds each clustered kernel from its centroids every step, so exactly those kernels get no gradient;
    the warning about them is dropped, and one about any other variable still shows."""
    import logging

    import tensorflow as tf

    images, labels = elpv_images
    clustered = clustering.cluster(copy_model(pruned), clusters=4, min_weights=0)
    model = qat.quantization_aware(clustering.strip(clustered), preserve_clusters=True)
    with tf.GradientTape() as tape:
        output = model(images[:8].astype("float32"), training=True)
        loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(labels[:8].reshape(-1, 1).astype("float32"), output))
    gradients = tape.gradient(loss, model.trainable_variables)
    missing = {v.name for v, g in zip(model.trainable_variables, gradients, strict=True) if g is None}
    recomputed = qat.recomputed_kernels(model)
    assert missing and missing == recomputed  # each has trainable centroids and original weights instead
    quiet = qat.RecomputedKernels(recomputed)
    message = "Gradients do not exist for variables %s when minimizing the loss."
    record = logging.LogRecord("tensorflow", logging.WARNING, "", 0, message, (sorted(missing),), None)
    other = logging.LogRecord("tensorflow", logging.WARNING, "", 0, message, (["head_output/bias:0"],), None)
    assert not quiet.filter(record) and quiet.filter(other)
