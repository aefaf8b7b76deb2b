"""Bundling TFLite models into one blob: every model stays itself to LiteRT and TFLite Micro, and weights two models
share are stored once."""

from __future__ import annotations

import numpy as np
import pytest

from stages.lib.keras import conversion
from stages.lib.runtime import litert, tflite_bundle, tflm


@pytest.fixture(scope="module")
def two_models(tiny_classifier, elpv_images) -> list[bytes]:
    """The real int8 classifier at 32 px, and the same network with another head (different weights, same backbone)."""
    from stages.lib.keras import model

    images = elpv_images[0].astype(np.float32)
    model.seed_everything(1)
    other = model.build_classifier(32, "efficientnet_lite0", "bundled", dense_units=32, dropout=0.1)
    return [conversion.convert(net, "int8", images) for net in (tiny_classifier, other)]


def _outputs(interpreter, image: np.ndarray) -> np.ndarray:
    return litert.part_runner(interpreter)(image)


def test_each_model_in_the_blob_computes_what_it_did_alone(two_models, elpv_images):
    blob, offsets = tflite_bundle.bundle(two_models)
    assert all(offset % 16 == 0 for offset in offsets) and len(blob) % 16 == 0
    image = elpv_images[0][:1].astype(np.float32)
    for model, offset in zip(two_models, offsets, strict=True):
        alone = _outputs(litert.reference_interpreter(model), image)
        np.testing.assert_array_equal(_outputs(litert.reference_interpreter(blob[offset:]), image), alone)
        arena = tflm.minimum_arena(blob[offset:])
        assert arena == tflm.minimum_arena(model)
        np.testing.assert_array_equal(tflm._micro_runner(blob[offset:], arena)(image), alone)  # noqa: SLF001


def test_weights_the_models_share_are_stored_once(two_models):
    first, second = two_models
    twice, _ = tflite_bundle.bundle([first, first])
    assert len(twice) < 1.01 * len(first) + 1024  # the second copy adds only its own tables
    both, _ = tflite_bundle.bundle([first, second])
    # Same ImageNet backbone, other head: the backbone's weights once, the heads' twice.
    assert len(first) < len(both) < 0.75 * (len(first) + len(second))
