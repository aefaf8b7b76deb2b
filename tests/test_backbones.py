"""The EfficientNet-Lite0 port is right: the full ImageNet model names a cat and an espresso."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from stages.lib.core.io import UserError
from stages.lib.keras import backbones, model


@pytest.fixture(scope="module")
def imagenet_lite0():
    return backbones.lite0_imagenet_classifier(224)


def _top1(classifier, image: np.ndarray) -> int:
    resized = tf.image.resize(image[None].astype("float32"), (224, 224)).numpy()
    return int(np.argmax(classifier.predict(resized, verbose=0)[0]))


def test_chelsea_is_a_cat(imagenet_lite0):
    assert (
        281 <= _top1(imagenet_lite0, skimage.data.chelsea()) <= 285
    )  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_coffee_is_an_espresso(imagenet_lite0):
    assert _top1(imagenet_lite0, skimage.data.coffee()) == 967


def test_classifier_is_flat_and_takes_raw_pixels(tiny_classifier):
    assert not any(isinstance(layer, tf.keras.Model) for layer in tiny_classifier.layers)  # tfmot skips nested models
    assert tiny_classifier.layers[1].name == "preprocess"
    assert tiny_classifier.output_shape == (None, 1)


def test_imagenet_weights_for_b0_offline_fail_with_the_fix(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("tf_keras.src.utils.data_utils.urlretrieve", no_network)
    with pytest.raises(UserError, match="weights: null"):
        model.build_classifier(32, "efficientnet_b0", "imagenet", 8, 0.1)


def test_b0_without_weights_builds_flat():
    classifier = model.build_classifier(32, "efficientnet_b0", None, 8, 0.1)
    assert classifier.output_shape == (None, 1)
    assert not any(isinstance(layer, tf.keras.Model) for layer in classifier.layers)


def test_stopped_backbone_is_the_full_one_cut_short(imagenet_lite0, short_classifier, elpv_images):
    """Stopped after block 3, the backbone holds exactly Lite0's layers up to block 3, with the same ImageNet
    weights, and computes the same block-3 features as the full network."""
    names = {layer.name for layer in short_classifier.layers if layer.weights and not layer.name.startswith("head")}
    assert "block3_project_conv" in names and not any(n.startswith(("block4", "top")) for n in names)
    full = imagenet_lite0.get_layer("block3_project_conv").get_weights()[0]
    np.testing.assert_array_equal(short_classifier.get_layer("block3_project_conv").get_weights()[0], full)
    images = elpv_images[0][:4].astype("float32")
    cut = tf.keras.Model(short_classifier.inputs, short_classifier.get_layer("block3_project_bn").output)
    whole = backbones.lite0_imagenet_classifier(32)
    reference = tf.keras.Model(whole.inputs, whole.get_layer("block3_project_bn").output)
    np.testing.assert_allclose(cut.predict(images, verbose=0), reference.predict(images, verbose=0), atol=1e-5)


def test_stop_after_a_block_lite0_does_not_have_is_refused():
    with pytest.raises(UserError, match="stop_after_block"):
        model.build_classifier(32, "efficientnet_lite0", "bundled", 8, 0.1, stop_after_block=16)


def test_a_narrowed_expand_keeps_the_strongest_imagenet_channels(imagenet_lite0):
    """Block 1 at half width keeps the 48 expand channels of largest L1 norm, and the depthwise and project
    weights that belong to exactly those channels."""
    narrow = model.build_classifier(32, "efficientnet_lite0", "bundled", 8, 0.1, 2, {1: 0.5})
    full = {name: imagenet_lite0.get_layer(name).get_weights()[0] for name in ("block1_expand_conv", "block1_dw_conv")}
    kept = np.sort(np.argsort(np.abs(full["block1_expand_conv"]).sum(axis=(0, 1, 2)))[-48:])
    np.testing.assert_array_equal(
        narrow.get_layer("block1_expand_conv").get_weights()[0], full["block1_expand_conv"][..., kept]
    )
    np.testing.assert_array_equal(
        narrow.get_layer("block1_dw_conv").get_weights()[0], full["block1_dw_conv"][:, :, kept]
    )
    project = imagenet_lite0.get_layer("block1_project_conv").get_weights()[0][:, :, kept]
    np.testing.assert_array_equal(narrow.get_layer("block1_project_conv").get_weights()[0], project)
    # Only the narrowed block changes: block 2 is Lite0's.
    assert narrow.get_layer("block2_expand_conv").filters == imagenet_lite0.get_layer("block2_expand_conv").filters


def test_narrowing_a_block_without_an_expand_layer_is_refused():
    with pytest.raises(UserError, match="expand_keep.block0"):
        model.build_classifier(32, "efficientnet_lite0", "bundled", 8, 0.1, 2, {0: 0.5})
