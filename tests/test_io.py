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


def _stage(tmp_path: Path, fail: bool) -> None:
    """A stage that writes a file, a folder and removes a stale output, then fails or not."""
    io.write_json(tmp_path / "metrics.json", {"new": True})
    with io.atomic_path(tmp_path / "model") as folder:
        folder.mkdir()
        (folder / "weights.bin").write_bytes(b"new")
    io.remove_output(tmp_path / "stale")
    if fail:
        raise io.UserError("the last output cannot be computed")
    io.write_bytes(tmp_path / "last.bin", b"new")


@pytest.mark.parametrize("fail", [True, False])
def test_a_stage_that_fails_replaces_none_of_its_outputs(tmp_path: Path, fail: bool):
    (tmp_path / "metrics.json").write_text('{"new": false}')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"old")
    (tmp_path / "stale").write_bytes(b"old")
    if fail:
        with pytest.raises(SystemExit):
            io.run_stage(lambda: _stage(tmp_path, fail))
        assert (tmp_path / "metrics.json").read_text() == '{"new": false}'
        assert (tmp_path / "model" / "weights.bin").read_bytes() == b"old" and (tmp_path / "stale").exists()
        assert not (tmp_path / "last.bin").exists()
    else:
        io.run_stage(lambda: _stage(tmp_path, fail))
        assert io.read_json(tmp_path / "metrics.json") == {"new": True} and not (tmp_path / "stale").exists()
        assert (tmp_path / "model" / "weights.bin").read_bytes() == b"new" and (tmp_path / "last.bin").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_an_output_written_twice_in_a_stage_keeps_the_last(tmp_path: Path):
    def stage() -> None:
        io.write_text(tmp_path / "out.txt", "first")
        io.write_text(tmp_path / "out.txt", "second")

    io.run_stage(stage)
    assert (tmp_path / "out.txt").read_text() == "second" and len(list(tmp_path.iterdir())) == 1


def test_a_file_written_inside_a_folder_being_written_is_readable_there(tmp_path: Path):
    """Inside a stage run, a folder's own files (written with `write_bytes` into its temporary) are there at once."""

    def stage() -> None:
        with io.atomic_path(tmp_path / "deployment") as folder:
            folder.mkdir()
            io.write_bytes(folder / "parts.bin", b"parts")
            assert (folder / "parts.bin").read_bytes() == b"parts"
        assert not (tmp_path / "deployment").exists()  # the folder itself waits for the stage's end

    io.run_stage(stage)
    assert (tmp_path / "deployment" / "parts.bin").read_bytes() == b"parts"
