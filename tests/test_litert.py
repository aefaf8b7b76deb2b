"""TFLite conversion and the LiteRT interpreter: int8 I/O, faithful predictions, the XNNPACK fallback, sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stages.lib.keras import conversion, model
from stages.lib.runtime import litert


def _zero_smallest(net, fraction: float):
    """A copy of `net` with the smallest `fraction` of each Conv2D/Dense kernel set to zero (what pruning leaves)."""
    import tf_keras as keras

    from stages.lib.compress.pruning import prunable

    copy = keras.models.clone_model(net)
    copy.set_weights(net.get_weights())
    for layer in filter(prunable, copy.layers):
        kernel = layer.kernel.numpy()
        kernel[np.abs(kernel) < np.quantile(np.abs(kernel), fraction)] = 0
        layer.kernel.assign(kernel)
    return copy


@pytest.fixture(scope="module")
def converted(tiny_classifier, elpv_images, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tflite")
    images, _ = elpv_images
    sparse_model = _zero_smallest(tiny_classifier, 0.8)
    paths = {}
    for fmt, sparse in (("float32", False), ("float16", False), ("dynamic", False), ("int8", False), ("int8", True)):
        name = fmt + ("_sparse" if sparse else "")
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(
            conversion.convert(sparse_model if sparse else tiny_classifier, fmt, images[:8], sparse=sparse)
        )
    return paths


def test_int8_model_has_int8_input_and_output(converted):
    assert litert.io_types(converted["int8"]) == ("int8", "int8")
    assert litert.io_types(converted["float32"]) == ("float32", "float32")


def test_float16_tflite_is_half_the_size_and_close_to_keras(converted, tiny_classifier, elpv_images):
    images, _ = elpv_images
    assert converted["float16"].stat().st_size < 0.55 * converted["float32"].stat().st_size
    interpreter, _ = litert.open_interpreter(converted["float16"], num_threads=1)
    np.testing.assert_allclose(litert.predict(interpreter, images), model.predict(tiny_classifier, images), atol=5e-3)


def test_float32_tflite_matches_keras(converted, tiny_classifier, elpv_images):
    images, _ = elpv_images
    interpreter, _ = litert.open_interpreter(converted["float32"], num_threads=1)
    np.testing.assert_allclose(litert.predict(interpreter, images), model.predict(tiny_classifier, images), atol=1e-4)


def test_batch_outputs_are_the_one_image_outputs_in_any_batch_size(converted, elpv_images):
    images, _ = elpv_images  # 24 images: batches of 10 leave a short last batch
    content = converted["float32"].read_bytes()
    interpreter, _ = litert.open_interpreter(converted["float32"], num_threads=1)
    one_by_one = litert.predict(interpreter, images)
    for batch_size in (1, 10, 24):
        outputs = litert.batch_outputs(content, images, num_threads=2, batch_size=batch_size)
        assert outputs.shape == (24, 1)
        np.testing.assert_allclose(outputs[:, 0], one_by_one, atol=1e-6)


def test_litert_runner_gives_the_frozen_blocks_outputs(tiny_classifier, elpv_images):
    """The students' cache on LiteRT: the frozen blocks' Keras outputs, to float rounding."""
    images, _ = elpv_images
    lower, _ = model.split_at_block(tiny_classifier, 3)
    predict = conversion.litert_runner(num_threads=2, batch_size=8)(lower)
    expected = lower.predict(images, verbose=0)
    outputs = predict(images)
    assert outputs.shape == expected.shape
    np.testing.assert_allclose(outputs, expected, atol=1e-3 * np.abs(expected).max())


def test_int8_tflite_stays_close_to_keras(converted, tiny_classifier, elpv_images):
    images, _ = elpv_images
    interpreter, _ = litert.open_interpreter(converted["int8"], num_threads=1)
    assert np.abs(litert.predict(interpreter, images) - model.predict(tiny_classifier, images)).max() < 0.1


def test_sparse_int8_falls_back_to_builtin_kernels(converted):
    _, kernels = litert.open_interpreter(converted["int8_sparse"], num_threads=1)
    assert kernels == "builtin"  # XNNPACK refuses sparse int8; the built-in kernels run it
    _, kernels = litert.open_interpreter(converted["int8"], num_threads=1)
    assert kernels == "xnnpack"


def test_sparsify_re_encodes_a_converted_model_as_the_converter_would(converted, tiny_classifier, elpv_images):
    from tensorflow.lite.tools import flatbuffer_utils

    def content(flatbuffer: bytes):
        """Tensors (with their sparsity encoding), operators and buffers, without the conversion metadata."""
        net = flatbuffer_utils.convert_bytearray_to_object(bytearray(flatbuffer))
        metadata = {entry.buffer for entry in net.metadata}
        buffers = [None if b.data is None else bytes(b.data) for i, b in enumerate(net.buffers) if i not in metadata]
        graph = net.subgraphs[0]
        tensors = [(t.name, t.buffer, t.shape.tolist(), t.sparsity is not None) for t in graph.tensors]
        return tensors, [(o.opcodeIndex, o.inputs.tolist()) for o in graph.operators], buffers

    dense = conversion.convert(_zero_smallest(tiny_classifier, 0.8), "int8", elpv_images[0][:8])
    sparse = conversion.sparsify(dense)
    assert content(sparse) == content(converted["int8_sparse"].read_bytes())
    assert any(encoded for *_, encoded in content(sparse)[0])


def test_sparsity_survives_into_the_tflite(tiny_classifier, elpv_images, tmp_path):
    path = tmp_path / "pruned_int8.tflite"
    path.write_bytes(conversion.convert(_zero_smallest(tiny_classifier, 0.5), "int8", elpv_images[0][:8]))
    assert 0.4 < litert.tflite_weight_sparsity(path) < 0.55  # depthwise kernels are not pruned, so a little under 0.5


def test_int8_is_smaller_and_sizes_repeat(converted):
    import gzip

    int8, float32 = converted["int8"].read_bytes(), converted["float32"].read_bytes()
    assert len(int8) < len(float32) / 3
    # gzip -9 with a fixed header time: the size of a real DEFLATE stream of these bytes, the same on every call.
    assert litert.compressed_size(int8) == len(gzip.compress(int8, compresslevel=9, mtime=0)) < len(int8)
    assert litert.compressed_size(bytes(len(int8))) < litert.compressed_size(int8) / 100  # zeros compress away


def test_latency_is_a_positive_median(converted, elpv_images):
    interpreter, _ = litert.open_interpreter(converted["int8"], num_threads=1)
    latency = litert.latency_ms(interpreter, elpv_images[0][0], runs=5)
    assert 0 < latency["p10"] <= latency["p25"] <= latency["median"] <= latency["p75"] <= latency["p90"]
    assert latency["runs"] == 5


def test_missing_model_is_a_user_error(tmp_path):
    from stages.lib.core.io import UserError

    with pytest.raises(UserError, match="convert stage"):
        litert.open_interpreter(tmp_path / "none.tflite", 1)
