"""TFLite Micro's look-up-table compression: the spec takes exactly the kernels that shrink, the compressed model is
smaller and gives the uncompressed model's TFLM outputs bit for bit, and an unclustered model is left alone."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import copy_model
from stages.lib.keras import conversion
from stages.lib.runtime import lut, tflm


def _clustered(net, levels: int):
    """`net` with every Conv2D/Dense/depthwise kernel snapped to `levels` values (as clustering leaves them)."""
    clustered = copy_model(net)
    for layer in clustered.layers:
        for weight in layer.weights:
            if "kernel" in weight.name:
                values = weight.numpy()
                centres = np.quantile(values, np.linspace(0, 1, levels))
                weight.assign(centres[np.abs(values[..., None] - centres).argmin(-1)].astype(np.float32))
    return clustered


@pytest.fixture(scope="module")
def models(short_classifier, elpv_images):
    calibration = elpv_images[0][:8]
    return {
        "int8": conversion.convert(short_classifier, "int8", calibration),
        "clustered": conversion.convert(_clustered(short_classifier, 8), "int8", calibration),
    }


def test_encoding_counts_index_bits_and_per_channel_tables():
    kernel = np.tile(np.arange(-4, 4, dtype=np.int8), (3, 4))  # 3 channels x 32 weights, 8 values each
    assert lut.encoding(kernel, 0) == {"bits": 3, "bytes": 3 * 32 * 3 // 8 + 3 * 8}
    assert lut.encoding(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0) is None  # 8 bits: no gain possible
    assert lut.index_bits(1) == 1 and lut.index_bits(2) == 1 and lut.index_bits(9) == 4


def test_unclustered_int8_model_is_left_alone(models):
    assert lut.plan(models["int8"], 1024) == []
    assert lut.compress(models["int8"], 1024) is None


def test_compressed_model_is_smaller_and_gives_the_same_tflm_outputs(models, elpv_images):
    clustered = models["clustered"]
    compressed, chosen = lut.compress(clustered, 1024)
    assert len(compressed) < len(clustered)
    assert chosen and all(entry["bits"] <= 3 and entry["int8_bytes"] - entry["bytes"] >= 1024 for entry in chosen)
    summary = lut.summary(chosen)
    assert summary["kernel_bytes_lut"] < summary["kernel_bytes_int8"] and summary["kernels"] == len(chosen)
    images = elpv_images[0]
    arena = tflm.minimum_arena(compressed)
    assert arena >= tflm.minimum_arena(clustered)  # the decompression scratch lives in the arena
    uncompressed = tflm.micro_predict(clustered, images, tflm.minimum_arena(clustered), workers=1)
    np.testing.assert_array_equal(tflm.micro_predict(compressed, images, arena, workers=1), uncompressed)


def test_a_higher_threshold_compresses_fewer_kernels(models):
    everything = lut.plan(models["clustered"], 0)
    assert len(lut.plan(models["clustered"], 10**9)) == 0 < len(lut.plan(models["clustered"], 1024)) <= len(everything)


def test_stripping_leaves_what_tflm_reads(models, elpv_images):
    """Without tensor names and with one zero point for zero-point-free weights, TFLM computes the same outputs,
    compressed or not; the names and zero points are gone."""
    import importlib

    int8 = models["clustered"]
    stripped, removed = lut.strip(int8)
    assert len(stripped) < len(int8) and removed["tensor_name_bytes"] > 0 and removed["zero_points_collapsed"] > 0
    editor = importlib.import_module("tflite_micro.tensorflow.lite.micro.compression.model_editor")
    tensors = list(editor.iter_tensors(editor.read(stripped)))
    assert not any(tensor.name for tensor in tensors)
    assert all(
        np.size(t.quantization.zero_points) == 1 or np.any(t.quantization.zero_points)
        for t in tensors
        if t.quantization
    )
    images = elpv_images[0]
    expected = tflm.micro_predict(int8, images, tflm.minimum_arena(int8), workers=1)
    np.testing.assert_array_equal(
        tflm.micro_predict(stripped, images, tflm.minimum_arena(stripped), workers=1), expected
    )
    compressed, _ = lut.compress(stripped, 1024)
    np.testing.assert_array_equal(
        tflm.micro_predict(compressed, images, tflm.minimum_arena(compressed), workers=1), expected
    )
    assert lut.strip(stripped)[1] == {"tensor_name_bytes": 0, "zero_points_collapsed": 0}  # nothing left to strip
