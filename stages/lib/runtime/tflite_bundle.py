"""Several TFLite models in one flatbuffer blob that stores identical buffers and quantization tables once.

A patch-based deployment runs one model per patch position; they hold the same weights and differ in their padding,
shapes, biases and activation scales (each patch is calibrated on its own region). Written as separate files each
carries its own copy of the weights. Here every model keeps its own tables, and a buffer (weights, biases) or
quantization table whose bytes an earlier model already holds points to that copy: a flatbuffer offset may point
anywhere later in the blob. Model k starts at `offsets[k]` (its root offset and the
`TFL3` identifier); `blob[offsets[k]:]` is a complete TFLite model to any interpreter, and a device passes
`blob + offsets[k]` to `tflite::GetModel`. Data vectors are 16-byte aligned, as the converter writes them."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

_IDENTIFIER = b"TFL3"
_ALIGN = 16


class _Shared:
    """Stands in for a table of the flatbuffers object API: packed once per distinct content and builder."""

    def __init__(self, pack: Callable[[flatbuffers.Builder], int], key: bytes, cache: dict[bytes, int]) -> None:
        self.pack, self.key, self.cache = pack, key, cache

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (the object API's name)
        if self.key not in self.cache:
            self.cache[self.key] = self.pack(builder)
        return self.cache[self.key]


def _pack_buffer(builder: flatbuffers.Builder, payload: bytes) -> int:
    """A Buffer table whose data vector is 16-byte aligned."""
    data = None
    if payload:
        builder.StartVector(1, len(payload), _ALIGN)
        builder.head -= len(payload)
        builder.Bytes[builder.head : builder.head + len(payload)] = payload
        data = builder.EndVector()
    schema.BufferStart(builder)
    if data is not None:
        schema.BufferAddData(builder, data)
    return schema.BufferEnd(builder)


def _quantization_key(quantization: schema.QuantizationParametersT) -> bytes:
    builder = flatbuffers.Builder(256)
    builder.Finish(quantization.Pack(builder))
    return bytes(builder.Output())


def bundle(models: list[bytes]) -> tuple[bytes, list[int]]:
    """One blob holding every model, and where each starts in it."""
    builder = flatbuffers.Builder(1 << 20)
    buffers: dict[bytes, int] = {}
    quantizations: dict[bytes, int] = {}
    roots = []
    for content in models:
        model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
        if any(buffer.offset for buffer in model.buffers):
            raise ValueError("a model with buffers outside its flatbuffer cannot be bundled")
        for index, buffer in enumerate(model.buffers):
            payload = np.asarray(buffer.data if buffer.data is not None else [], dtype=np.uint8).tobytes()
            model.buffers[index] = _Shared(partial(_pack_buffer, payload=payload), payload, buffers)
        for subgraph in model.subgraphs:
            for tensor in subgraph.tensors:
                if tensor.quantization is not None:
                    table = tensor.quantization
                    tensor.quantization = _Shared(table.Pack, _quantization_key(table), quantizations)
        builder.Finish(model.Pack(builder), file_identifier=_IDENTIFIER)
        builder.finished = False  # the next model is built in front of this one
        roots.append(builder.Offset())
    builder.Prep(_ALIGN, 0)
    builder.finished = True
    blob = bytes(builder.Output())
    return blob, [len(blob) - root for root in roots]
