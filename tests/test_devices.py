"""TFLite Micro: the measured arena is the smallest that allocates; C array bytes equal the model; fit rules."""
from __future__ import annotations

import re

import numpy as np
import pytest

from stages.lib import devices, tflite


@pytest.fixture(scope="module")
def int8_model(tiny_classifier, elpv_images, tmp_path_factory):
    path = tmp_path_factory.mktemp("micro") / "int8.tflite"
    path.write_bytes(tflite.convert(tiny_classifier, "int8", elpv_images[0][:8]))
    return path


def test_minimum_arena_is_the_smallest_that_allocates(int8_model):
    arena = devices.minimum_arena(int8_model)
    assert devices.arena_allocates(int8_model, arena)
    assert not devices.arena_allocates(int8_model, arena - devices.ARENA_ALIGNMENT)


def test_tflm_agrees_with_litert(int8_model, elpv_images):
    images, _ = elpv_images
    micro = devices.micro_predict(int8_model, images[:6], devices.minimum_arena(int8_model))
    interpreter, _ = tflite.open_interpreter(int8_model, 1)
    assert np.abs(micro - tflite.predict(interpreter, images[:6])).max() <= 0.02


def test_c_array_holds_the_model_byte_for_byte():
    model = bytes(range(256)) * 3 + b"\x01\x02"
    source, header = devices.c_array(model, "edge_model", 12345)
    body = source[source.index("{") + 1:source.index("}")]
    assert bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body)) == model
    assert "alignas(16) const unsigned char edge_model[]" in source and f"edge_model_len = {len(model)};" in source
    assert "edge_model_arena_bytes = 12345;" in header


TARGET = {"description": "test board", "sram_bytes": 1000, "psram_bytes": 5000, "flash_bytes": 10000}


@pytest.mark.parametrize("model_bytes,arena,fits,memory", [
    (100, 900, True, "internal SRAM"),
    (100, 4000, True, "PSRAM"),
    (100, 6000, False, "does not fit"),
    (20000, 900, False, "internal SRAM"),
])
def test_target_fit(model_bytes, arena, fits, memory):
    fit = devices.target_fit(model_bytes, arena, TARGET)
    assert fit["fits"] is fits and fit["arena_memory"] == memory
    assert fit["arena_shortfall_bytes"] == max(0, arena - 5000) and fit["flash_shortfall_bytes"] == max(0, model_bytes - 10000)
