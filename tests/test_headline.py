"""The headline metrics: numbers only, few and short-keyed, so `dvc metrics show` and `dvc metrics diff` read at a
glance."""

from __future__ import annotations

import json
import subprocess

from conftest import ROOT
from stages.lib.report import headline, verdicts


def _row(arena: int | None) -> dict:
    return {
        "accuracy": 0.918918918,
        "validation_roc_auc": 0.948781234,
        "size_bytes": 4_293_512,
        "flash_bytes": 1_930_160,
        "latency_ms": {"median": 2.27088, "p25": 2.1, "p75": 2.4},
        "tflm_arena_bytes": arena,
        "ram_bytes": arena and arena + 150_528,
    }


def test_a_model_file_holds_rounded_numbers_with_short_keys():
    assert headline.model(_row(None)) == {"acc": 0.9189, "auc": 0.9488, "bytes": 4_293_512, "ms": 2.27}
    assert headline.model(_row(1_695_680))["stored"] == 1_930_160  # what the board stores, not the file
    assert headline.model(_row(1_695_680))["ram"] == 1_695_680 + 150_528  # the arena and the image


def test_a_board_file_and_the_verdict_counts():
    choice = {"validation_roc_auc": 0.93752, "ram_use": 0.671234, "flash_use": 0.20783}
    assert headline.board(choice, 0.89489) == {"acc": 0.8949, "auc": 0.9375, "ram": 0.671, "flash": 0.208}
    checks = [{"verdict": verdicts.SUPPORTED}, {"verdict": verdicts.UNTESTED}, {"verdict": verdicts.SUPPORTED}]
    counts = headline.verdict_counts(checks, verdicts.VERDICTS)
    assert counts == {
        "supported": {"n": 2},
        "not_supported": {"n": 0},
        "inconclusive": {"n": 0},
        "not_testable_here": {"n": 1},
    }


def test_the_committed_metrics_are_few_numbers_in_a_narrow_table():
    """What a user sees on a clean clone: `dvc metrics show` lists only the headline, every value a number, every
    line at most 120 characters."""
    shown = subprocess.run(
        ["dvc", "metrics", "show", "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    files = next(iter(json.loads(shown).values()))["data"]
    assert {path.split("/")[1] for path in files} == set(headline.FOLDERS)
    values = [value for data in files.values() for value in data["data"].values()]
    assert 0 < len(values) <= 200 and all(type(value) in (int, float) for value in values)
    table = subprocess.run(["dvc", "metrics", "show"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert max(len(line) for line in table.splitlines()) <= 120
