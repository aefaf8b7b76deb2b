"""A model of your own: read, checked at the first stage with one line per problem, rebuilt flat on raw pixels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tf_keras as keras
import yaml

from conftest import ROOT, mobilenet_v2, run_module, small_cnn
from stages.lib.compress import qat
from stages.lib.core import params as params_lib
from stages.lib.core.io import UserError
from stages.lib.keras import own_model

PIXELS = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)


def scaled(pixels: np.ndarray, scaling: str) -> np.ndarray:
    scale, offset = own_model.SCALINGS[scaling]
    return pixels * np.float32(scale) + np.float32(offset)


def test_the_scalings_are_the_ones_params_allows():
    assert tuple(own_model.SCALINGS) == params_lib.INPUT_SCALINGS
    np.testing.assert_allclose(scaled(np.array([[0.0] * 3, [255.0] * 3]), "-1-1"), [[-1.0] * 3, [1.0] * 3], rtol=1e-6)
    mean, std = np.array(own_model.IMAGENET_MEAN), np.array(own_model.IMAGENET_STD)
    np.testing.assert_allclose(scaled(np.full(3, 255.0), "imagenet"), (1 - mean) / std, rtol=1e-6)


@pytest.mark.parametrize("scaling", params_lib.INPUT_SCALINGS)
def test_the_rebuilt_model_on_raw_pixels_is_the_model_on_scaled_ones(scaling: str):
    model = small_cnn(32)
    flat = own_model.flat_with_scaling(model, 32, scaling)
    assert len(flat.layers) == len(own_model.layers(model)) + 1 + (scaling != "0-255")
    expected = model.predict(scaled(PIXELS, scaling), verbose=0)
    np.testing.assert_allclose(flat.predict(PIXELS, verbose=0), expected, atol=1e-5)


def test_a_nested_model_is_rebuilt_flat_with_its_weights(tmp_path: Path):
    scaling = "imagenet"
    base = mobilenet_v2(2, 32)
    body = keras.Model(base.input, base.get_layer("out_relu").output, name="body")
    nested = keras.Sequential([body, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, "sigmoid")])
    nested.save(tmp_path / "nested.keras")
    model = own_model.read(tmp_path / "nested.keras")
    flat = own_model.flat_with_scaling(model, 32, scaling)
    # tfmot skips the inside of a nested model: every layer is now the flat model's own.
    assert not any(isinstance(layer, keras.Model) for layer in flat.layers)
    assert len(flat.layers) == len(own_model.layers(model)) + 1 + (scaling != "0-255")
    expected = model.predict(scaled(PIXELS, scaling), verbose=0)
    np.testing.assert_allclose(flat.predict(PIXELS, verbose=0), expected, atol=1e-5)


def test_a_savedmodel_folder_is_read_and_fingerprinted_whole(tmp_path: Path):
    model = small_cnn(32)
    model.save(tmp_path / "saved", save_format="tf")
    read = own_model.read(tmp_path / "saved")
    assert own_model.check(read, "saved") == 32
    np.testing.assert_allclose(read.predict(PIXELS, verbose=0), model.predict(PIXELS, verbose=0), atol=1e-6)
    before = own_model.fingerprint(tmp_path / "saved")
    (tmp_path / "saved/variables/note.txt").write_text("changed")  # every file of the folder is part of it
    added = own_model.fingerprint(tmp_path / "saved")
    (tmp_path / "saved/variables/note.txt").rename(tmp_path / "saved/note.txt")  # and where it is
    assert len({before, added, own_model.fingerprint(tmp_path / "saved")}) == 3


def _functional(body, inputs=None) -> keras.Model:
    inputs = inputs or keras.Input((32, 32, 3))
    return keras.Model(inputs, body(inputs))


def _refusal(model: keras.Model, path: Path, classes: int = 2) -> str:
    model.save(path)
    with pytest.raises(UserError) as refused:
        loaded = own_model.read(path)
        own_model.check(loaded, path)
        qat.check_quantizable(own_model.flat_with_scaling(loaded, 32, "0-1"), path)
        own_model.check_output(loaded, path, classes)
    assert "\n" not in str(refused.value)
    return str(refused.value)


def test_each_problem_is_one_line_naming_it(tmp_path: Path):
    dense = keras.layers.Dense(1, activation="sigmoid")
    flat = keras.layers.Flatten()
    lambda_model = _functional(lambda x: dense(flat(keras.layers.Lambda(lambda t: t * 2, name="doubling")(x))))
    assert "Lambda" in _refusal(lambda_model, tmp_path / "lambda.h5")  # refused before loading runs its code
    logits = _functional(lambda x: keras.layers.Dense(1)(keras.layers.Flatten()(x)))
    assert "1 unit(s) through linear" in _refusal(logits, tmp_path / "logits.keras")
    assert "3 classes, which need 3 softmax" in _refusal(small_cnn(32), tmp_path / "cnn.h5", classes=3)
    norm = _functional(lambda x: keras.layers.Dense(1, "sigmoid")(flat(keras.layers.LayerNormalization(name="ln")(x))))
    assert "layer 'ln' (LayerNormalization)" in _refusal(norm, tmp_path / "ln.keras")
    late_norm = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.BatchNormalization()]
        + [keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")]
    )
    assert "right after a Conv2D or Dense" in _refusal(late_norm, tmp_path / "late.keras")
    first, second = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    two = keras.Model([first, second], dense(flat(keras.layers.Add()([first, second]))))
    assert "2 inputs" in _refusal(two, tmp_path / "two.keras")
    wide = keras.Sequential([keras.Input((32, 48, 3)), keras.layers.Flatten(), keras.layers.Dense(1, "sigmoid")])
    assert "square RGB" in _refusal(wide, tmp_path / "wide.keras")
    with pytest.raises(UserError, match="does not exist"):
        own_model.read(tmp_path / "missing.h5")


@keras.saving.register_keras_serializable("test")
class Doubling(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2


def test_a_custom_layer_is_refused_with_or_without_its_code(tmp_path: Path):
    model = _functional(lambda x: keras.layers.Dense(1, "sigmoid")(keras.layers.Flatten()(Doubling()(x))))
    # A .keras file names the class's module: refused before loading, even where its code is registered.
    assert "custom layer tf-keras does not know (Doubling from test_own_model)" in _refusal(model, tmp_path / "c.keras")
    # An .h5 file read where the code is registered: refused as code tfmot cannot see into.
    assert "runs code of its own" in _refusal(model, tmp_path / "custom.h5")
    # Read where it is not (the stage's own process): its class is unknown.
    script = f"from stages.lib.keras import own_model; own_model.read({str(tmp_path / 'custom.h5')!r})"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert "custom layer tf-keras does not know" in result.stderr


def test_a_keras_3_file_is_refused_and_the_export_step_it_names_works(tmp_path: Path):
    import keras as keras3  # Keras 3 (`TF_USE_LEGACY_KERAS` only switches `tf.keras`)

    assert int(keras3.__version__.split(".")[0]) >= 3
    keras3.utils.set_random_seed(0)
    inputs = keras3.Input((32, 32, 3))
    x = keras3.layers.Conv2D(8, 3, use_bias=False)(inputs)
    x = keras3.layers.BatchNormalization()(x)
    x = keras3.layers.GlobalAveragePooling2D()(keras3.layers.ReLU()(x))
    original = keras3.Model(inputs, keras3.layers.Dense(1, activation="sigmoid")(x))
    for name in ("k3.keras", "k3.h5"):
        original.save(tmp_path / name)
        with pytest.raises(UserError, match="saved by Keras 3.*rebuild it with tf-keras"):
            own_model.read(tmp_path / name)
    # The step the refusal names: the same layers in tf-keras, the weights copied, saved; the same answers.
    rebuilt = keras.Sequential(
        [keras.Input((32, 32, 3)), keras.layers.Conv2D(8, 3, use_bias=False), keras.layers.BatchNormalization()]
        + [keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")]
    )
    rebuilt.set_weights(original.get_weights())
    rebuilt.save(tmp_path / "rebuilt.keras")
    read = own_model.read(tmp_path / "rebuilt.keras")
    expected = np.asarray(original.predict(PIXELS, verbose=0))
    np.testing.assert_allclose(read.predict(PIXELS, verbose=0), expected, atol=1e-5)


def test_a_model_outside_models_own_is_refused():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["file"] = "/home/me/model.h5"
    with pytest.raises(UserError, match="under models/own/"):
        params_lib.validate(params)


def test_an_unsupported_layer_stops_prepare_with_one_line_and_nothing_written(tmp_path: Path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"]["file"] = "models/own/ln.h5"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "models/own").mkdir(parents=True)
    flat = keras.layers.Flatten()
    norm = _functional(lambda x: keras.layers.Dense(1, "sigmoid")(flat(keras.layers.LayerNormalization(name="ln")(x))))
    norm.save(tmp_path / "models/own/ln.h5")
    result = run_module("stages.prepare", tmp_path)
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .endswith("cannot quantize layer 'ln' (LayerNormalization) (docs/own-model.md)")
    )
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()
