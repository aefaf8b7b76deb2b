"""A Keras model of your own as the baseline: read the file, check what every stage will do to it, and rebuild it as
one flat graph on raw 0-255 pixels (its input scaling as the first layer), so every stage, runtime and board feeds it
what it feeds Lite0."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import h5py
import tf_keras as keras

from stages.lib.core.io import UserError
from stages.lib.core.params import OWN_MODEL_FOLDER

# Raw pixel p (0-255) -> p x scale + offset, per channel: what the model was trained on.
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCALINGS = {
    "0-255": ((1.0,) * 3, (0.0,) * 3),
    "0-1": ((1 / 255,) * 3, (0.0,) * 3),
    "-1-1": ((1 / 127.5,) * 3, (-1.0,) * 3),
    "imagenet": (
        tuple(1 / (255 * std) for std in IMAGENET_STD),
        tuple(-mean / std for mean, std in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)),
    ),
}
KERAS3_EXPORT = (
    "rebuild it with tf-keras (`import tf_keras as keras`, the same layers), copy the weights "
    f"(`rebuilt.set_weights(model.get_weights())`) and `rebuilt.save('{OWN_MODEL_FOLDER}/<name>.keras')`"
)


def keras_version(path: Path) -> str | None:
    """The Keras version that wrote `path` (a .keras zip or an .h5 file), where the file records it."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("metadata.json")).get("keras_version")
        if h5py.is_hdf5(path):
            with h5py.File(path, "r") as file:
                version = file.attrs.get("keras_version")
                return version.decode() if isinstance(version, bytes) else version
    except (KeyError, OSError, ValueError):
        return None
    return None


def custom_classes(path: Path) -> list[str]:
    """The classes a .keras file's configuration takes from outside Keras (custom layers), in order."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (KeyError, ValueError, zipfile.BadZipFile):
        return []
    found, pending = [], [config]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if isinstance(module, str) and "class_name" in item and not module.startswith(("keras", "tf_keras")):
                found.append(f"{item['class_name']} from {module}")
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def h5_config(path: Path) -> str:
    """The model's configuration JSON in an .h5 file ('' when it has none)."""
    with h5py.File(path, "r") as file:
        config = file.attrs.get("model_config", "")
    return config.decode() if isinstance(config, bytes) else str(config)


def read(path: str | Path) -> keras.Model:
    """The model in `path` (.h5, tf-keras .keras or a SavedModel folder), loaded without running code from it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"`model.file`: {path} does not exist; put your model file in {OWN_MODEL_FOLDER}/")
    if path.is_file() and h5py.is_hdf5(path) and '"class_name": "Lambda"' in h5_config(path):
        raise UserError(
            f"{path} has a Lambda layer, whose Python code loading would run; replace it by built-in layers"
        )
    custom = custom_classes(path) if path.is_file() and zipfile.is_zipfile(path) else []
    if custom:
        raise UserError(
            f"{path} has a custom layer tf-keras does not know ({custom[0]}); replace it by built-in layers"
        )
    version = keras_version(path) if path.is_file() else None
    if version and int(version.split(".")[0]) >= 3:
        raise UserError(f"{path} was saved by Keras {version}, which tf-keras cannot read; {KERAS3_EXPORT}")
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras reports an unreadable file with many exception types
        message = " ".join(str(error).split())
        if "Unknown layer" in message or "custom_objects" in message or "Could not locate class" in message:
            raise UserError(
                f"{path} has a custom layer tf-keras does not know ({message[:160]}); replace it by built-in layers"
            ) from None
        raise UserError(
            f"{path} is not a Keras model tf-keras can read ({type(error).__name__}: {message[:160]})"
        ) from None
    if not isinstance(model, keras.Model):
        raise UserError(f"{path} holds no Keras model (a SavedModel exported without Keras); save it with model.save")
    return model


def layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every layer of `model` but its inputs, nested models opened."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def check(model: keras.Model, path: str | Path) -> int:
    """Refuse, in one line, what a stage could not do with `model`; return its input size (0: any size)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(
            f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; the pipeline needs one image "
            "input and one output"
        )
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2]:
        raise UserError(f"{path} takes inputs of shape {shape[1:]}; the pipeline feeds square RGB images (n, n, 3)")
    for layer in layers(model):
        if type(layer).__module__.split(".")[0] != "tf_keras" or isinstance(layer, keras.layers.Lambda):
            raise UserError(
                f"{path}: layer {layer.name!r} ({type(layer).__name__}) runs code of its own, which tfmot cannot "
                "prune or quantize; replace it by built-in layers (docs/own-model.md)"
            )
    return int(shape[1] or 0)


def check_output(model: keras.Model, path: str | Path, classes: int) -> None:
    """Refuse an output that does not match the data's classes (one sigmoid unit for two, a softmax for more)."""
    units, activation = model.output_shape[-1], output_activation(model)
    expected = (1, "sigmoid") if classes == 2 else (classes, "softmax")
    if (units, activation) != expected:
        raise UserError(
            f"{path} outputs {units} unit(s) through {activation or 'no known activation'}; the data has {classes} "
            f"classes, which need {expected[0]} {expected[1]} unit(s)"
        )


def output_activation(model: keras.Model) -> str | None:
    """The activation of the model's last layer: `sigmoid`, `softmax`, `linear`, ...; None if it has none."""
    last = layers(model)[-1]
    if isinstance(last, keras.layers.Softmax):
        return "softmax"
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", None)


def fingerprint(path: str | Path) -> str:
    """The SHA-256 of the model's bytes (of a SavedModel folder: of each file's path in it and SHA-256, in name
    order)."""
    path, digest = Path(path), hashlib.sha256()
    if path.is_file():
        digest.update(path.read_bytes())
    for file in sorted(path.rglob("*")) if path.is_dir() else []:
        if file.is_file():
            digest.update(
                file.relative_to(path).as_posix().encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest()
            )
    return digest.hexdigest()


def flat_with_scaling(model: keras.Model, image_size: int, scaling: str) -> keras.Model:
    """`model` on raw 0-255 pixels: its input scaling as a Rescaling layer, then its own layers (nested models
    inlined: tfmot skips the inside of a nested model), sharing their weights."""
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = inputs
    if scaling != "0-255":
        scale, offset = SCALINGS[scaling]
        x = keras.layers.Rescaling(list(scale), offset=list(offset), name="input_scaling")(x)
    return keras.Model(inputs, _apply(model, [x])[0], name=model.name)


def _apply(model: keras.Model, inputs: list) -> list:
    """`model`'s layers called on `inputs` (one tensor per model input), nested models inlined; its outputs."""
    if isinstance(model, keras.Sequential):
        x = inputs[0]
        for layer in model.layers:
            x = _apply(layer, [x])[0] if isinstance(layer, keras.Model) else layer(x)
        return [x]
    config = model.get_config()
    tensors = {tuple(key[:3]): tensor for key, tensor in zip(config["input_layers"], inputs, strict=True)}
    for entry in config["layers"]:
        layer = model.get_layer(entry["name"])
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if len(entry["inbound_nodes"]) > 1:
            raise UserError(
                f"layer {layer.name!r} of {model.name} is called more than once; the pipeline needs each once"
            )
        for index, node in enumerate(entry["inbound_nodes"]):
            sources = [tensors[tuple(source[:3])] for source in node]
            kwargs = node[0][3] if len(node[0]) > 3 else {}
            if isinstance(layer, keras.Model):
                outputs = _apply(layer, sources)
            else:
                result = layer(sources if len(sources) > 1 else sources[0], **kwargs)
                outputs = result if isinstance(result, list | tuple) else [result]
            for position, tensor in enumerate(outputs):
                tensors[(entry["name"], index, position)] = tensor
    return [tensors[tuple(key[:3])] for key in config["output_layers"]]
