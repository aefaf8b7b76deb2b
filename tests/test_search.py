"""The report's view of the stored student search (stages/lib/report/search.py), on the committed search record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stages.lib.core import paths
from stages.lib.report import search

ROOT = Path(__file__).resolve().parents[1]
FRONTIER = ROOT / paths.SEARCH_FRONTIER


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, Path]:
    """The committed search and a teacher file whose md5 it names."""
    frontier, teacher = tmp_path / "frontier.json", tmp_path / "teacher.npz"
    shutil.copy(FRONTIER, frontier)
    teacher.write_bytes(b"teacher")
    record = json.loads(frontier.read_text())
    frontier.write_text(json.dumps(record | {"teacher_md5": search.file_md5(teacher)}))
    return frontier, teacher


def test_a_search_on_another_teacher_is_not_shown(stored: tuple[Path, Path]):
    frontier, teacher = stored
    teacher.write_bytes(b"another teacher")
    record, why = search.load(frontier, teacher)
    assert record is None and "another teacher" in why


def test_no_stored_search_says_how_to_run_one(tmp_path: Path):
    record, why = search.load(tmp_path / "missing.json", tmp_path / "teacher.npz")
    assert record is None and "benchmarks/student_search.py" in why


def test_one_row_per_board_naming_its_pick_and_ties(stored: tuple[Path, Path]):
    record, _ = search.load(*stored)
    lines = search.lines(record, "95 %")
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| board")]
    assert len(rows) == len(record["boards"])
    for (board, entry), row in zip(record["boards"].items(), rows, strict=True):
        assert row.startswith(f"| {board} |")
        if entry["pick"]:
            assert f"`{entry['pick']}`" in row
            pick = next(c for c in entry["candidates"] if c["name"] == entry["pick"])
            assert pick["fits"] and pick["name"] in entry["tied"]


def test_the_pick_is_the_smallest_tied_candidate(stored: tuple[Path, Path]):
    record, _ = search.load(*stored)
    for entry in record["boards"].values():
        tied = [c for c in entry["candidates"] if c["name"] in entry["tied"]]
        for candidate in tied:
            assert candidate["difference_from_best"]["high"] >= 0
        if tied:
            smallest = min(tied, key=lambda c: (c["flash_bytes"], c["ram_bytes"]))
            assert entry["pick"] == smallest["name"]


def test_each_board_draws_its_frontier(stored: tuple[Path, Path], tmp_path: Path):
    from stages.lib.core import params
    from stages.lib.report import figures

    record, _ = search.load(*stored)
    targets = params.load(ROOT / "params.yaml").report.targets
    name = next(iter(record["boards"]))
    figures.search_frontier(record["boards"][name], name, targets[name], "95 %", tmp_path / "frontier.png")
    assert (tmp_path / "frontier.png").read_bytes()[:4] == b"\x89PNG"
