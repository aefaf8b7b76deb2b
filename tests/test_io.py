"""Atomic writes: a failure leaves the old artifact (or nothing), never half of a new one."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.lib.core import io


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"accuracy": 0.9})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as temporary:
            temporary.write_text("{half")
            raise RuntimeError("killed mid-way")
    assert io.read_json(target) == {"accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_folder_output_is_replaced_whole(tmp_path: Path):
    target = tmp_path / "model"
    for generation in ("old", "new"):
        with io.atomic_path(target) as folder:
            folder.mkdir()
            (folder / generation).write_text(generation)
    assert [p.name for p in target.iterdir()] == ["new"]


def test_unwritable_path_is_a_user_error_even_for_root(tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(io.UserError, match="cannot create folder"):  # no permission bit lets root mkdir under a file
        io.write_text(blocker / "metrics" / "x.json", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]
