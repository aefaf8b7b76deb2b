"""The classifier's training helpers: what trains in each phase, the validation threshold, the strategy."""

from __future__ import annotations

import io
import zipfile

import h5py
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from conftest import copy_model
from stages.lib.core.io import UserError
from stages.lib.core.paths import META_FILE, MODEL_FILE
from stages.lib.keras import model


def test_phase_one_trains_only_the_head(tiny_classifier):
    model.set_trainable(tiny_classifier, from_block=None, head_batchnorm=True)
    trainable = {layer.name for layer in tiny_classifier.layers if layer.trainable and layer.weights}
    assert trainable == {"head_dense", "head_bn", "head_output"}


def test_fine_tune_keeps_every_batchnorm_frozen(tiny_classifier):
    model.set_trainable(tiny_classifier, from_block=12)
    assert (
        tiny_classifier.get_layer("block12_expand_conv").trainable and tiny_classifier.get_layer("top_conv").trainable
    )
    assert not tiny_classifier.get_layer("block11_project_conv").trainable
    assert not any(
        layer.trainable for layer in tiny_classifier.layers if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_fine_tune_can_leave_the_depthwise_kernels_as_they_are(tiny_classifier):
    model.set_trainable(tiny_classifier, from_block=12, depthwise=False)
    in_range = [layer for layer in tiny_classifier.layers if model._block_index(layer.name) in (12, 13, 14, 15)]
    depthwise = [layer for layer in in_range if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert depthwise and not any(layer.trainable for layer in depthwise)
    assert (
        tiny_classifier.get_layer("block12_expand_conv").trainable and tiny_classifier.get_layer("top_conv").trainable
    )
    model.set_trainable(tiny_classifier, from_block=12)
    assert all(layer.trainable for layer in depthwise)


def test_strategy_on_a_cpu_machine():
    assert model.distribution_strategy("auto").num_replicas_in_sync == 1
    mirrored = model.distribution_strategy("mirrored")  # one replica per visible GPU, the CPU when there is none
    replicas = max(1, len(tf.config.list_logical_devices("GPU")))
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == replicas


def test_save_and_load_round_trip(tiny_classifier, elpv_images, tmp_path):
    images, _ = elpv_images
    model.save(tmp_path, tiny_classifier, {"threshold": 0.4}, np.zeros(3))
    loaded, meta = model.load(tmp_path)
    assert meta == {"threshold": 0.4}
    np.testing.assert_allclose(model.predict(loaded, images[:4]), model.predict(tiny_classifier, images[:4]), atol=1e-6)


def test_saved_model_leaves_the_optimizer_out_and_a_broken_file_is_a_user_error(tiny_classifier, tmp_path):
    net = copy_model(tiny_classifier)
    net.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
    net.fit(np.zeros((2, 32, 32, 3), np.float32), np.zeros(2), verbose=0)  # Adam now holds two slots per weight
    model.save(tmp_path, net, {}, np.zeros(1))
    with zipfile.ZipFile(tmp_path / MODEL_FILE) as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        assert "layers" in weights and "optimizer" not in weights
    (tmp_path / MODEL_FILE).write_bytes(b"not a zip archive")
    with pytest.raises(UserError, match="not a readable .keras model.*dvc repro --force"):
        model.load(tmp_path)


def test_load_keeps_trainable_flags_and_refuses_code_in_the_file(tiny_classifier, tmp_path):
    net = copy_model(tiny_classifier)  # the fixture is shared by the session: leave its flags alone
    model.set_trainable(net, from_block=1)
    (tmp_path / "flags").mkdir()
    model.save(tmp_path / "flags", net, {}, np.zeros(1))
    loaded, _ = model.load(tmp_path / "flags")

    def flags(m):
        return [(layer.name, layer.trainable) for layer in m.layers if layer.weights]

    assert flags(loaded) == flags(net)

    inputs = keras.Input((4,))
    hostile = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    (tmp_path / "lambda").mkdir()
    hostile.save(tmp_path / "lambda" / MODEL_FILE)
    (tmp_path / "lambda" / META_FILE).write_text("{}")
    with pytest.raises(ValueError, match="(?i)unsafe|lambda"):
        model.load(tmp_path / "lambda")


def test_split_at_block_shares_the_layers_and_composes_to_the_model(short_classifier, elpv_images):
    images, _ = elpv_images
    lower, upper = model.split_at_block(short_classifier, 2)
    assert {id(w) for w in upper.weights} <= {id(w) for w in short_classifier.weights}
    assert not any(w.name.startswith(("stem", "block0", "block1")) for w in upper.weights)
    assert any(w.name.startswith("block2") for w in upper.weights)
    np.testing.assert_allclose(
        model.predict(upper, lower.predict(images[:4].astype(np.float32), verbose=0)),
        model.predict(short_classifier, images[:4]),
        atol=1e-5,
    )
    with pytest.raises(UserError, match="no block 9"):
        model.split_at_block(short_classifier, 9)


def test_training_metrics_score_soft_targets_as_their_rounded_labels():
    """A distilled student's targets are soft; its logged accuracy and AUC are against the rounded target."""
    soft, hard = np.array([[0.2], [0.7], [0.9], [0.4]]), np.array([[0.0], [1.0], [1.0], [0.0]])
    predictions = np.array([[0.1], [0.8], [0.3], [0.45]])
    plain = [keras.metrics.BinaryAccuracy(), keras.metrics.AUC()]
    for metric, reference in zip(model.binary_metrics(), plain, strict=True):
        metric.update_state(soft, predictions)
        reference.update_state(hard, predictions)
        assert float(metric.result()) == pytest.approx(float(reference.result()))


def test_a_softmax_head_trains_on_soft_rows_scored_as_their_most_probable_class():
    """Three classes: a softmax head, categorical cross-entropy, and the logged AUC is the macro one-vs-rest AUC of
    each target row's most probable class (a distilled student's soft rows)."""
    from sklearn import metrics

    assert model.head_output(2) == (1, "sigmoid") and model.head_output(3) == (3, "softmax")
    loss, (accuracy, auc) = model.training_setup(3)
    assert loss == "categorical_crossentropy"
    soft = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.5, 0.1, 0.4], [0.3, 0.3, 0.4]])
    predictions = np.array([[0.7, 0.2, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    auc.update_state(soft, predictions)
    accuracy.update_state(soft, predictions)
    hard = soft.argmax(axis=1)
    expected = metrics.roc_auc_score(hard, predictions, multi_class="ovr")
    assert float(auc.result()) == pytest.approx(expected, abs=0.01)  # Keras' AUC integrates 200 thresholds
    assert float(accuracy.result()) == pytest.approx((predictions.argmax(axis=1) == hard).mean())
