"""The restricted .pth reader: reads the shipped Lite0 checkpoint, refuses any pickle that would run code."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from stages.lib.core.io import UserError
from stages.lib.keras import pth
from stages.lib.keras.backbones import bundled_lite0_path


def test_reads_lite0_state_dict_with_numpy_only():
    state = pth.load_state_dict(bundled_lite0_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280) and state["_fc.weight"].dtype == np.float32
    assert np.isfinite(state["_bn1.running_var"]).all() and (state["_bn1.running_var"] > 0).all()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_file(payload: object) -> bytes:
    buffer = io.BytesIO()
    for value in (pth.MAGIC_NUMBER, pth.PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(value, buffer, protocol=2)
    pickle.dump(payload, buffer, protocol=2)
    pickle.dump([], buffer, protocol=2)
    return buffer.getvalue()


def test_refuses_a_pickle_that_would_run_code(tmp_path: Path):
    marker = tmp_path / "pwned"
    malicious = tmp_path / "evil.pth"
    malicious.write_bytes(_legacy_file({"weight": _RunsCode(marker)}))
    with pytest.raises(UserError, match="posix.system|os.system|refused"):
        pth.load_state_dict(malicious)
    assert not marker.exists()


def test_refuses_code_in_the_header_too(tmp_path: Path):
    marker = tmp_path / "pwned"
    malicious = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump(_RunsCode(marker), buffer, protocol=2)
    malicious.write_bytes(buffer.getvalue())
    with pytest.raises(UserError, match="refused to load global"):
        pth.load_state_dict(malicious)
    assert not marker.exists()


def test_rejects_a_file_that_is_not_a_legacy_checkpoint(tmp_path: Path):
    other = tmp_path / "other.pth"
    other.write_bytes(pickle.dumps(123, protocol=2))
    with pytest.raises(UserError, match="magic number"):
        pth.load_state_dict(other)


@pytest.mark.parametrize(
    "shape,stride,offset",
    [
        ((4, 4), (4, 1), 0),  # 16 values from a storage of 8
        ((2, 2), (1000, 1), 0),  # a stride past the end
        ((2,), (1,), 7),  # an offset with too little left after it
        ((2,), (1,), -1),
        ((20000, 20000), (0, 0), 0),  # 1.6 GB from 259 bytes: stride 0 repeats one value
        ((3, 2), (-1, 1), 4),  # a negative stride
    ],
)
def test_refuses_a_tensor_that_reads_outside_its_storage(tmp_path: Path, shape, stride, offset):
    storage = pth._Storage(np.float32, 8)
    storage.array = np.arange(8, dtype=np.float32)
    with pytest.raises(ValueError, match="reads outside its storage of 8 values"):
        pth._LazyTensor(storage, offset, shape, stride).materialize()


def _crafted(tmp_path: Path, monkeypatch, shape=(64, 64), stride=(64, 1), declared=4, written=4, keys=("0",)):
    """A whole legacy file with one tensor of `shape` and `stride` over a storage that declares `declared` values
    and holds `written`."""
    import sys
    import types

    # Stand-ins whose pickles name torch's globals, as a real checkpoint does (torch itself is not installed).
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    torch.__path__ = []
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    torch.FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    utils._rebuild_tensor_v2 = type("_rebuild_tensor_v2", (), {"__module__": "torch._utils"})

    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return (utils._rebuild_tensor_v2, (Storage(), 0, shape, stride, False, {}))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", declared) if isinstance(obj, Storage) else None

    buffer = io.BytesIO()
    for value in (pth.MAGIC_NUMBER, pth.PROTOCOL_VERSION, {"little_endian": True}):
        pickle.dump(value, buffer, protocol=2)
    Pickler(buffer, protocol=2).dump({"weight": Tensor()})
    pickle.dump(list(keys), buffer, protocol=2)
    buffer.write(written.to_bytes(8, "little") + np.arange(min(written, 64), dtype=np.float32).tobytes())
    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(buffer.getvalue())
    return crafted


def test_crafted_checkpoint_is_refused_before_reading(tmp_path: Path, monkeypatch):
    """A whole legacy file whose tensor claims 64 x 64 values from a storage of 4."""
    with pytest.raises(UserError, match="reads outside its storage of 4 values"):
        pth.load_state_dict(_crafted(tmp_path, monkeypatch))


def test_a_well_formed_crafted_file_reads(tmp_path: Path, monkeypatch):
    state = pth.load_state_dict(_crafted(tmp_path, monkeypatch, shape=(2, 2), stride=(2, 1)))
    np.testing.assert_array_equal(state["weight"], [[0, 1], [2, 3]])


@pytest.mark.parametrize(
    "change,message",
    [
        ({"shape": (20000, 20000), "stride": (0, 0)}, "reads outside its storage"),  # 1.6 GB asked by 259 bytes
        ({"declared": 4, "written": 10**15}, "declares 1000000000000000 values"),  # a storage larger than the file
        ({"written": 3}, "declares 3 values"),  # disagrees with its header
        ({"keys": ("0", "9")}, "storage '9' is listed but no tensor uses it"),
    ],
)
def test_malformed_checkpoints_are_one_line(tmp_path: Path, monkeypatch, change, message):
    with pytest.raises(UserError, match=message) as raised:
        pth.load_state_dict(_crafted(tmp_path, monkeypatch, **change))
    assert "crafted.pth" in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "content",
    [
        b"",  # empty
        _legacy_file({"weight": 1})[:-5],  # truncated pickle
        bytes(range(256)) * 4,  # noise
        _legacy_file([1, 2, 3]),  # not a dict
        b"\x80\x02" + b"(" * 100000,  # a pickle that only opens marks
    ],
)
def test_any_malformed_file_is_one_user_error_naming_it(tmp_path: Path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match="bad.pth"):
        pth.load_state_dict(path)


def test_a_zip_checkpoint_says_so(tmp_path: Path):
    import zipfile

    path = tmp_path / "new.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({}))
    with pytest.raises(UserError, match="zip-format files are not supported"):
        pth.load_state_dict(path)
