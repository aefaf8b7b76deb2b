"""Pruning, clustering and QAT on the real classifier: sparsity is measured by counting zeros."""
from __future__ import annotations

import numpy as np
import pytest
import tf_keras as keras

from stages.lib import compress, model


def _fit(net: keras.Model, images: np.ndarray, labels: np.ndarray, epochs: int, callbacks=()) -> None:
    net.compile(optimizer=keras.optimizers.Adam(1e-4), loss="binary_crossentropy")
    net.fit(images.astype(np.float32), labels.astype(np.float32), batch_size=8, epochs=epochs, callbacks=list(callbacks), verbose=0)


def _copy(net: keras.Model) -> keras.Model:
    """An independent copy: tfmot's wrappers modify the layers they wrap."""
    copy = keras.models.clone_model(net)
    copy.set_weights(net.get_weights())
    return copy


@pytest.fixture(scope="module")
def pruned(tiny_classifier, elpv_images):
    images, labels = elpv_images
    net = _copy(tiny_classifier)
    model.set_trainable(net, from_block=0)
    steps = 4 * 3  # 24 images / batch 8 = 3 steps per epoch, 4 epochs
    wrapped = compress.prune(net, 0.6, steps, min_weights=0)
    _fit(wrapped, images, labels, 4, compress.pruning_callbacks())
    return compress.strip_pruning(wrapped)


def test_pruning_reaches_the_target_sparsity(pruned):
    sparsity = compress.weight_sparsity(pruned)
    assert sparsity["conv2d"] == pytest.approx(0.6, abs=0.01)
    assert sparsity["dense"] == pytest.approx(0.6, abs=0.01)
    assert sparsity["depthwise_conv2d"] < 0.05  # tfmot does not prune depthwise kernels


def test_unpruned_model_has_no_sparsity(tiny_classifier):
    assert compress.weight_sparsity(tiny_classifier)["prunable"] < 0.01


def test_schedule_ends_within_the_steps_run():
    for total in (1, 3, 49, 147, 1000):
        schedule, end_step = compress.pruning_schedule(0.5, total)
        assert 1 <= end_step <= max(total, 1) and end_step % schedule.frequency == 0


def test_small_layers_stay_dense(tiny_classifier):
    wrapped = compress.prune(_copy(tiny_classifier), 0.5, 10, min_weights=16384)
    names = {layer.name for layer in wrapped.layers if type(layer).__name__ == "PruneLowMagnitude"}
    assert "prune_low_magnitude_top_conv" in names and "prune_low_magnitude_block15_project_conv" in names
    assert not any(name.endswith(("stem_conv", "block0_project_conv", "head_output")) for name in names)


def test_depthwise_layers_are_not_wrapped(tiny_classifier):
    assert not compress.prunable(tiny_classifier.get_layer("block1_dw_conv"))
    assert compress.prunable(tiny_classifier.get_layer("block1_expand_conv"))
    assert compress.prunable(tiny_classifier.get_layer("head_dense"))


def test_clustering_keeps_sparsity_and_limits_values(pruned, elpv_images):
    clustered = compress.cluster(_copy(pruned), clusters=4, min_weights=0)
    _fit(clustered, *elpv_images, epochs=1)
    stripped = compress.strip_clustering(clustered)
    assert compress.unique_weights(stripped) <= 4 + 1  # 4 centroids, plus the preserved zero
    assert compress.weight_sparsity(stripped)["prunable"] >= 0.59


def test_prune_preserving_qat_keeps_zeros(pruned, elpv_images):
    qat = compress.quantization_aware(_copy(pruned), preserve_clusters=False)
    _fit(qat, *elpv_images, epochs=1)
    kernels = [w.numpy() for w in qat.weights if w.name.endswith("kernel:0") and "dw_conv" not in w.name and "depthwise" not in w.name]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros >= 0.59


def test_calibration_starts_qat_at_the_float_ranges(pruned, elpv_images):
    images = elpv_images[0].astype(np.float32)
    qat = compress.quantization_aware(_copy(pruned), preserve_clusters=False)
    ranges = [w for w in qat.weights if w.name.endswith("output_max:0")]
    assert ranges and {float(w.numpy()) for w in ranges} == {6.0}  # tfmot's starting range, whatever the layer
    uncalibrated = np.abs(qat(images, training=False).numpy() - pruned(images).numpy()).mean()

    assert compress.calibrate_activation_ranges(qat, pruned, images) >= len(ranges)
    fresh = _copy(pruned)  # its own layers: `pruned` shares some with the models it was cloned from
    bottleneck = keras.Model(fresh.inputs, fresh.get_layer("block1_project_bn").output)(images).numpy()
    layer = qat.get_layer("quant_block1_project_bn")
    calibrated = {w.name.split("/")[-1].split(":")[0]: float(w.numpy()) for w in layer.weights if "output_m" in w.name}
    assert calibrated == pytest.approx({"output_min": min(bottleneck.min(), 0), "output_max": max(bottleneck.max(), 0)})
    # Calibrated but untrained, the fake-quantized model already predicts like the float one.
    error = np.abs(qat(images, training=False).numpy() - pruned(images).numpy()).mean()
    assert error < 0.05 and error < uncalibrated


def test_cluster_preserving_qat_keeps_zeros_beside_dense_layers(pruned, elpv_images):
    clustered = compress.cluster(_copy(pruned), clusters=4, min_weights=0)
    _fit(clustered, *elpv_images, epochs=1)
    stripped = compress.strip_clustering(clustered)
    # One layer without zeros, as our unpruned small layers are: in tfmot's own registry it switched
    # sparsity preservation off for every layer sharing its quantizer.
    stem = stripped.get_layer("stem_conv")
    stem.kernel.assign(np.where(stem.kernel.numpy() == 0, 1e-3, stem.kernel.numpy()))
    qat = compress.quantization_aware(stripped, preserve_clusters=True)
    _fit(qat, *elpv_images, epochs=1)
    for layer in qat.layers:
        if hasattr(layer, "layer") and compress.prunable(layer.layer) and layer.layer.name != "stem_conv":
            kernel = next(w.numpy() for w in layer.weights if w.name.split("/")[-1] == "kernel:0")
            assert (kernel == 0).mean() >= 0.55, layer.name
