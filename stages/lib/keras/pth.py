"""A restricted, numpy-only reader for PyTorch state_dicts in the legacy (non-zip) serialization.

A `.pth` file is a pickle, and an unrestricted `pickle.load` runs whatever code the file names.
This reader resolves only the globals a plain state_dict needs (storage types, the tensor-rebuild
function, OrderedDict) and refuses every other one before it can run.
"""

from __future__ import annotations

import math
import os
import pickle
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from stages.lib.core.io import UserError, quote

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_MAGIC = b"PK\x03\x04"
# The largest tensor this reader builds (Lite0's largest is 5 MB): a crafted shape cannot ask for more memory.
MAX_TENSOR_BYTES = 1 << 30

STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    """A storage whose bytes follow the pickle in the file; filled in after unpickling."""

    def __init__(self, dtype: type, size: int) -> None:
        self.dtype, self.size, self.array = np.dtype(dtype), size, None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride

    def materialize(self) -> np.ndarray:
        self.check_bounds()
        flat = self.storage.array[self.offset :]
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat, shape=self.shape, strides=tuple(s * item for s in self.stride))
        return np.array(view)

    def check_bounds(self) -> None:
        """Refuse a shape, stride or offset that would read outside the storage (`as_strided` does not check), a
        zero or negative stride, or more values than the storage holds or MAX_TENSOR_BYTES allows."""
        size = len(self.storage.array)
        valid = (
            isinstance(self.offset, int)
            and self.offset >= 0
            and len(self.shape) == len(self.stride)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in (*self.shape, *self.stride))
            and all(extent >= 0 for extent in self.shape)
            and all(step >= 1 for extent, step in zip(self.shape, self.stride, strict=True) if extent > 1)
        )
        count = math.prod(self.shape) if valid else 0
        if valid and count:
            last = self.offset + sum((extent - 1) * step for extent, step in zip(self.shape, self.stride, strict=True))
            valid = last < size and count <= size and count * self.storage.dtype.itemsize <= MAX_TENSOR_BYTES
        elif valid:
            valid = self.offset <= size
        if not valid:
            raise ValueError(
                f"tensor with shape {quote(self.shape)}, stride {quote(self.stride)} and offset "
                f"{quote(self.offset)} reads outside its storage of {size} values: a corrupt or crafted checkpoint; "
                "use an untouched copy of the file"
            )


def _rebuild_tensor_v2(storage: _Storage, offset: int, shape: tuple, stride: tuple, *_ignored: Any) -> _LazyTensor:
    return _LazyTensor(storage, offset, tuple(shape), tuple(stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = STORAGE_DTYPES[name]


def _allowed_global(module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
        return OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
        return _rebuild_tensor_v2
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(name)
    raise pickle.UnpicklingError(f"refused to load global {module}.{name}: not part of a plain state_dict")


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        return _allowed_global(module, name)

    def persistent_load(self, saved_id: Any) -> _Storage:
        if not (isinstance(saved_id, tuple) and saved_id and saved_id[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id!r}")
        _, storage_type, key, _location, size = saved_id[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, size)
        return self.storages[key]


def _load_value(handle: BinaryIO, storages: dict[str, _Storage] | None = None) -> Any:
    return _RestrictedUnpickler(handle, {} if storages is None else storages).load()


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy-format PyTorch state_dict into numpy arrays, without torch and without running code; any
    malformed file is one UserError naming it."""
    try:
        return _read_state_dict(Path(path))
    except (pickle.UnpicklingError, ValueError) as error:
        raise UserError(f"{path}: {error}") from None
    except Exception as error:  # noqa: BLE001 - a crafted pickle can raise anything; none may become a traceback
        raise UserError(
            f"{path}: not a readable PyTorch state_dict ({type(error).__name__}); use an untouched copy of the file"
        ) from None


def _read_state_dict(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as handle:
        if handle.read(4) == ZIP_MAGIC:
            raise ValueError(
                "a zip-format checkpoint (torch >= 1.6); zip-format files are not supported: resave it with "
                "torch.save(state, path, _use_new_zipfile_serialization=False)"
            )
        handle.seek(0)
        if _load_value(handle) != MAGIC_NUMBER:
            raise ValueError("not a legacy PyTorch file (magic number mismatch)")
        if _load_value(handle) != PROTOCOL_VERSION:
            raise ValueError("unsupported PyTorch protocol version")
        _load_value(handle)  # system info: endianness and type sizes
        storages: dict[str, _Storage] = {}
        state = _load_value(handle, storages)
        keys = _load_value(handle)
        file_bytes = os.fstat(handle.fileno()).st_size
        for key in keys:
            if key not in storages:
                raise ValueError(f"storage {quote(key)} is listed but no tensor uses it")
            storage = storages[key]
            (count,) = struct.unpack("<q", handle.read(8))
            wanted = count * storage.dtype.itemsize
            if count != storage.size or wanted > file_bytes - handle.tell():
                raise ValueError(f"storage {quote(key)} declares {count} values; the file is truncated or crafted")
            storage.array = np.frombuffer(handle.read(wanted), dtype=storage.dtype)
    if not isinstance(state, dict):
        raise ValueError(f"expected a state_dict, found {type(state).__name__}")
    return {name: tensor.materialize() for name, tensor in state.items() if isinstance(tensor, _LazyTensor)}
