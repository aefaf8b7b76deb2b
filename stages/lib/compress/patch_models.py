"""Patch-based inference (MCUNetV2, Lin et al. 2021): the first blocks of a model run on one image patch at a time,
so the largest activations, at the highest resolutions, never exist whole in RAM.

`patch_model` cuts from a trained flat Keras model the graph that computes one region of a block's output from
the smallest input region that determines it. Every convolution becomes a `valid` one, fed its real neighbours
inside the image and explicit zeros where the whole-image model's `same` padding put them, so the assembled
patches equal the whole model's block output (float rounding aside): one model per patch position, since the zeros
fall on different sides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tf_keras as keras

from stages.lib.core.io import UserError, write_bytes
from stages.lib.keras import conversion
from stages.lib.keras import model as model_lib
from stages.lib.runtime import lut, patching, tflite_bundle
from stages.lib.runtime.patching import Region, grid_regions

CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)


def _inputs(layer: Any) -> list[Any]:
    return layer.input if isinstance(layer.input, list) else [layer.input]


def _same_pad_before(size: int, kernel: int, stride: int) -> int:
    """Rows (or columns) TensorFlow's `same` padding puts before the input: the smaller half of the total."""
    out = -(-size // stride)
    return max((out - 1) * stride + kernel - size, 0) // 2


def _spatial(layer: Any) -> bool:
    """Whether the layer reads a neighbourhood (a convolution wider than 1x1 or strided)."""
    return isinstance(layer, CONVOLUTIONS) and (layer.kernel_size != (1, 1) or layer.strides != (1, 1))


def _reads(layer: Any, wanted: Region, shape: tuple[int, int]) -> Region:
    """The input region (unclipped: outside the image is `same` padding) a layer reads to write `wanted`."""
    if not _spatial(layer):
        return wanted
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    top, left = _same_pad_before(shape[0], kh, sh), _same_pad_before(shape[1], kw, sw)
    r0, r1, c0, c1 = wanted
    return (r0 * sh - top, (r1 - 1) * sh - top + kh, c0 * sw - left, (c1 - 1) * sw - left + kw)


def _clip(region: Region, shape: tuple[int, int]) -> Region:
    r0, r1, c0, c1 = region
    return (max(r0, 0), min(r1, shape[0]), max(c0, 0), min(c1, shape[1]))


def _union(a: Region | None, b: Region) -> Region:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def block_output_layer(model: keras.Model, block: int) -> Any:
    """The layer whose output is `block`'s output (its residual add, else its projection's BatchNorm)."""
    names = {layer.name for layer in model.layers}
    for name in (f"block{block}_add", f"block{block}_project_bn"):
        if name in names:
            return model.get_layer(name)
    raise UserError(f"{model.name} has no block {block} to run in patches")


def _stage_layers(model: keras.Model, block: int) -> list[Any]:
    """The layers up to `block`'s output, in graph order (the flat model lists them so)."""
    last = block_output_layer(model, block)
    layers = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            layers.append(layer)
        if layer is last:
            return layers
    raise AssertionError("unreachable: the block's layer is in the model")


def _crop(tensor: Any, have: Region, want: Region, name: str) -> Any:
    cropping = ((want[0] - have[0], have[1] - want[1]), (want[2] - have[2], have[3] - want[3]))
    if cropping == ((0, 0), (0, 0)):
        return tensor
    return keras.layers.Cropping2D(cropping, name=name)(tensor)


def _valid_copy(layer: Any, name: str) -> Any:
    """The same convolution and weights with `valid` padding."""
    copy = type(layer).from_config({**layer.get_config(), "padding": "valid", "name": name})
    copy.build(layer.input_shape)
    copy.set_weights(layer.get_weights())
    return copy


def patch_model(model: keras.Model, block: int, wanted: Region, tag: str) -> tuple[keras.Model, Region]:
    """The model computing rows and columns `wanted` of `block`'s output, and the input region it reads."""
    layers = _stage_layers(model, block)
    need: dict[int, Region] = {id(layers[-1].output): wanted}
    for layer in reversed(layers):  # each tensor: the union of what its readers need, inside the tensor
        if id(layer.output) not in need:
            continue
        for source in _inputs(layer):
            shape = tuple(source.shape[1:3])
            need[id(source)] = _union(need.get(id(source)), _clip(_reads(layer, need[id(layer.output)], shape), shape))
    source_region = need[id(model.input)]
    r0, r1, c0, c1 = source_region
    inputs = keras.Input((r1 - r0, c1 - c0, model.input.shape[-1]), name=f"patch_{tag}")
    have: dict[int, tuple[Any, Region]] = {id(model.input): (inputs, source_region)}
    for layer in layers:
        if id(layer.output) not in need:
            continue
        out_region, arguments = need[id(layer.output)], []
        for index, source in enumerate(_inputs(layer)):
            tensor, region = have[id(source)]
            shape = tuple(source.shape[1:3])
            reads = _reads(layer, out_region, shape)
            tensor = _crop(tensor, region, _clip(reads, shape), f"{layer.name}_crop{index}_{tag}")
            padding = (
                (-reads[0] if reads[0] < 0 else 0, max(reads[1] - shape[0], 0)),
                (-reads[2] if reads[2] < 0 else 0, max(reads[3] - shape[1], 0)),
            )
            if padding != ((0, 0), (0, 0)):
                tensor = keras.layers.ZeroPadding2D(padding, name=f"{layer.name}_pad_{tag}")(tensor)
            arguments.append(tensor)
        run = _valid_copy(layer, f"{layer.name}_{tag}") if _spatial(layer) else layer
        output = run(arguments if isinstance(layer.input, list) else arguments[0])
        have[id(layer.output)] = (output, out_region)
    return keras.Model(inputs, have[id(layers[-1].output)][0], name=f"{model.name}_patch_{tag}"), source_region


def patch_models(model: keras.Model, block: int, grid: int) -> list[tuple[keras.Model, Region, Region]]:
    """For each cell of a grid x grid split of `block`'s output: its model, the input region it reads, the output
    region it writes (row-major)."""
    size = tuple(block_output_layer(model, block).output.shape[1:3])
    if grid > min(size):
        raise UserError(
            f"`patches.grid` is {grid}, but block {block}'s output is {size[0]}x{size[1]} at a "
            f"{model.input.shape[1]} px input: use a grid of at most {min(size)}, or a larger image or an earlier block"
        )
    parts = []
    for index, region in enumerate(grid_regions(size, grid)):
        part, source = patch_model(model, block, region, f"{index // grid}{index % grid}")
        parts.append((part, source, region))
    return parts


def convert_deployment(
    model: keras.Model, block: int, grid: int, representative: np.ndarray, folder: Path, lut_min_saving_bytes: int
) -> dict:
    """Write the int8 patch models and the int8 rest of the network, bundled into one blob (and, as a board stores
    them, `lut.device_model`, into another), and the plan into `folder`; return the plan.

    Each patch model is calibrated on its region of the representative images; the tail on the whole-image block
    output of the same images. The patch models hold the same weights; the blob stores them once."""
    patches, models = [], []
    for index, (part, source, region) in enumerate(patch_models(model, block, grid)):
        r0, r1, c0, c1 = source
        models.append(conversion.convert(part, "int8", representative[:, r0:r1, c0:c1]))
        name = f"patch_{index // grid}{index % grid}"
        patches.append({"name": name, "input_region": list(source), "output_region": list(region)})
    lower, tail = model_lib.split_at_block(model, block + 1)  # the whole-image blocks 0-`block`, and the rest
    features = lower.predict(representative.astype(np.float32), batch_size=32, verbose=0)
    models.append(conversion.convert(tail, "int8", features))
    blob, offsets = tflite_bundle.bundle(models)
    write_bytes(folder / patching.BUNDLE_FILE, blob)
    device_parts = [lut.device_model(part, lut_min_saving_bytes) for part in models]
    device, device_offsets = tflite_bundle.bundle([part for part, _, _ in device_parts])
    write_bytes(folder / patching.DEVICE_FILE, device)
    compressed = [kernel for _, kernels, _ in device_parts for kernel in kernels]
    plan = {
        "grid": grid,
        "through_block": block,
        "input_shape": list(model.input_shape[1:]),
        "buffer_shape": list(lower.output_shape[1:]),
        "patches": [
            {**patch, "offset": offset, "device_offset": device_offset}
            for patch, offset, device_offset in zip(patches, offsets[:-1], device_offsets[:-1], strict=True)
        ],
        "tail": {"name": "tail", "offset": offsets[-1], "device_offset": device_offsets[-1]},
        # Each part on its own, as the converter wrote it: what sharing the weights saves.
        "separate_bytes": sum(len(part) for part in models),
        # The board's parts' kernels stored as look-up-table indices, over every part (None: none shrank).
        "lut": lut.summary(compressed) if compressed else None,
    }
    patching.write_plan(folder, plan)
    return plan
