"""TensorFlow Lite Micro's look-up-table compression of an int8 model's weights: the spec (which kernels, how many
index bits, one value table per output channel) and the compressed model. The `tflite-micro` package's
compressor does the work and inserts the DECODE operators; its runtime decompresses into a scratch buffer."""

from __future__ import annotations

import hashlib
import importlib
import math
from typing import Any

import numpy as np

# The kernels TFLM decompresses (reference kernels), by builtin operator code, with the output-channel axis of
# their filter (input 1): CONV_2D and FULLY_CONNECTED are [out, ...], DEPTHWISE_CONV_2D is [1, h, w, out].
KERNEL_AXES = {3: 0, 9: 0, 4: 3}  # CONV_2D, FULLY_CONNECTED, DEPTHWISE_CONV_2D
MAX_INDEX_BITS = 7  # the DECODE format's widest index


def _compression():
    """The package's compression modules (imported by their full names: the package also exports a function
    called `compress`)."""
    prefix = "tflite_micro.tensorflow.lite.micro.compression"
    return tuple(importlib.import_module(f"{prefix}.{name}") for name in ("compress", "model_editor", "spec"))


def strip(model: bytes) -> tuple[bytes, dict[str, int]]:
    """The model without what TFLite Micro never reads: tensor names, and the per-channel zero points of weights that
    are all zero, collapsed to one (TFLM reads one zero point for every channel; LiteRT refuses such a file, a board
    does not run LiteRT). Also how many name bytes and zero points went."""
    _, model_editor, _ = _compression()
    graph = model_editor.read(model)
    names = collapsed = 0
    for tensor in model_editor.iter_tensors(graph):
        names += len(tensor.name or "")
        tensor.name = ""
        zeros = tensor.quantization.zero_points if tensor.quantization is not None else 0
        if not isinstance(zeros, int) and len(zeros) > 1 and not np.any(zeros):
            collapsed += len(zeros) - 1
            tensor.quantization.zero_points = [0]
    return bytes(graph.build()), {"tensor_name_bytes": names, "zero_points_collapsed": collapsed}


def index_bits(distinct: int) -> int:
    return max(1, math.ceil(math.log2(max(distinct, 1))))


def encoding(array: np.ndarray, axis: int) -> dict[str, Any] | None:
    """One int8 kernel's look-up-table encoding: the fewest index bits that hold every output channel's values, and
    the bytes it then takes (indices + one table of 2^bits values per channel); None past 7 bits.

    Per channel only: the package's per-tensor tables gave wrong outputs on its own runtime (a per-channel-quantized
    kernel; measured on the real classifier), and int8 kernels are per-channel quantized, so one table for the whole
    tensor holds the union of every channel's values anyway."""
    distinct = max(len(np.unique(values)) for values in np.moveaxis(array, axis, 0))
    bits = index_bits(distinct)
    if bits > MAX_INDEX_BITS:
        return None
    tables = array.shape[axis] * 2**bits * array.itemsize
    return {"bits": bits, "bytes": math.ceil(array.size * bits / 8) + tables}


def plan(model: bytes, min_saving_bytes: int) -> list[dict[str, Any]]:
    """Every int8 kernel of a CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED whose look-up-table encoding saves at
    least `min_saving_bytes` (a DECODE operator and its tensors cost a few hundred bytes of structure)."""
    _, model_editor, _ = _compression()
    graph = model_editor.read(model)
    chosen, seen = [], set()
    for subgraph_index, subgraph in enumerate(graph.subgraphs):
        for operator in subgraph.operators:
            axis = KERNEL_AXES.get(int(operator.opcode))
            kernel = operator.inputs[1] if axis is not None and len(operator.inputs) > 1 else None
            if kernel is None or kernel.array is None or kernel.array.dtype != np.int8 or id(kernel) in seen:
                continue
            seen.add(id(kernel))
            best = encoding(kernel.array, axis)
            if best and kernel.array.nbytes - best["bytes"] >= min_saving_bytes:
                chosen.append(
                    {
                        "subgraph": subgraph_index,
                        "tensor": kernel.index,
                        "axis": axis,
                        "int8_bytes": kernel.array.nbytes,
                        # Patch parts hold the same kernels, which a bundle stores once: `summary` counts each once.
                        "digest": hashlib.sha256(kernel.array.tobytes()).hexdigest(),
                    }
                    | best
                )
    return chosen


def compress(model: bytes, min_saving_bytes: int) -> tuple[bytes, list[dict[str, Any]]] | None:
    """The model with every kernel of `plan` stored as look-up-table indices, and the plan; None when no kernel
    shrinks the file (unclustered int8 kernels hold up to 256 values per channel). Strip it first (`strip`) to
    leave only what TFLM reads."""
    chosen = plan(model, min_saving_bytes)
    if not chosen:
        return None
    compress_module, _, spec = _compression()
    specs = [
        spec.Tensor(
            subgraph=entry["subgraph"],
            tensor=entry["tensor"],
            compression=[
                spec.LookUpTableCompression(
                    index_bitwidth=entry["bits"],
                    mode=spec.PerChannel(axis=entry["axis"]),
                )
            ],
        )
        for entry in chosen
    ]
    compressed = bytes(compress_module.compress(model, specs))
    return (compressed, chosen) if len(compressed) < len(model) else None


def summary(chosen: list[dict[str, Any]]) -> dict[str, Any]:
    """How many distinct kernels were compressed, at which widths, and the kernel bytes before and after."""
    chosen = list({entry["digest"]: entry for entry in chosen}.values())
    bits: dict[str, int] = {}
    for entry in chosen:
        bits[str(entry["bits"])] = bits.get(str(entry["bits"]), 0) + 1
    return {
        "kernels": len(chosen),
        "kernels_by_index_bits": dict(sorted(bits.items())),
        "kernel_bytes_int8": sum(entry["int8_bytes"] for entry in chosen),
        "kernel_bytes_lut": sum(entry["bytes"] for entry in chosen),
    }


def device_model(model: bytes, min_saving_bytes: int) -> tuple[bytes, list[dict[str, Any]], dict[str, int]]:
    """What a board stores of an int8 model: stripped (`strip`), then its kernels as look-up-table indices where that
    shrinks it (`compress`); the kernels compressed (`plan`'s entries; none when nothing shrank); and what stripping
    removed (`strip`'s counts and the bytes saved)."""
    stripped, removed = strip(model)
    removed = removed | {"bytes_saved": len(model) - len(stripped)}
    compressed = compress(stripped, min_saving_bytes)
    return (stripped, [], removed) if compressed is None else (*compressed, removed)
