"""TFLite Micro on the host: the measured arena is the smallest that allocates, and TFLM computes what LiteRT's
reference kernels compute (XNNPACK rounds differently: that, not TFLM, is where LiteRT and TFLM differ)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.lib.keras import conversion
from stages.lib.runtime import litert, tflm


@pytest.fixture(scope="module")
def int8_model(tiny_classifier, elpv_images, tmp_path_factory):
    path = tmp_path_factory.mktemp("micro") / "int8.tflite"
    path.write_bytes(conversion.convert(tiny_classifier, "int8", elpv_images[0][:8]))
    return path


def test_minimum_arena_is_the_smallest_that_allocates(int8_model):
    arena = tflm.minimum_arena(int8_model)
    assert tflm.arena_allocates(int8_model, arena)
    assert not tflm.arena_allocates(int8_model, arena - tflm.ARENA_ALIGNMENT)


def test_tflm_equals_litert_reference_kernels_and_is_close_to_xnnpack(int8_model, elpv_images):
    images, _ = elpv_images
    arena = tflm.minimum_arena(int8_model)
    micro = tflm.micro_predict(int8_model, images, arena, workers=1)
    np.testing.assert_array_equal(tflm.micro_predict(int8_model, images, arena, workers=2), micro)
    reference = litert.predict(litert.reference_interpreter(int8_model), images)
    np.testing.assert_array_equal(micro, reference)
    interpreter, kernels = litert.open_interpreter(int8_model, 1)
    assert kernels == "xnnpack"
    # int8 output steps are 1/256: XNNPACK's requantization may move an output by a few of them.
    assert np.abs(micro - litert.predict(interpreter, images)).max() <= 0.05


def test_the_arena_probe_runs_in_the_checkout_that_holds_the_stages():
    """The probe runs `python -m stages.lib.runtime.tflm` in tflm.CHECKOUT: a package move must keep it right."""
    assert (tflm.CHECKOUT / "stages/lib/runtime/tflm.py").resolve() == Path(tflm.__file__).resolve()
