"""The restricted .pth reader: reads the shipped Lite0 checkpoint, refuses any pickle that would run code."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from stages.lib import pth
from stages.lib.backbones import bundled_lite0_path


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
    with pytest.raises(pickle.UnpicklingError, match="posix.system|os.system|refused"):
        pth.load_state_dict(malicious)
    assert not marker.exists()


def test_refuses_code_in_the_header_too(tmp_path: Path):
    marker = tmp_path / "pwned"
    malicious = tmp_path / "evil.pth"
    buffer = io.BytesIO()
    pickle.dump(_RunsCode(marker), buffer, protocol=2)
    malicious.write_bytes(buffer.getvalue())
    with pytest.raises(pickle.UnpicklingError):
        pth.load_state_dict(malicious)
    assert not marker.exists()


def test_rejects_a_file_that_is_not_a_legacy_checkpoint(tmp_path: Path):
    other = tmp_path / "other.pth"
    other.write_bytes(pickle.dumps(123, protocol=2))
    with pytest.raises(ValueError, match="magic number"):
        pth.load_state_dict(other)
