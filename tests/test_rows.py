"""The report's rows come from params, never from whatever files are on disk."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import ROOT
from stages.lib.core import params as params_lib
from stages.lib.core import paths
from stages.lib.core.io import UserError, write_json
from stages.lib.core.settings import Settings
from stages.lib.report import rows

DEFAULT = params_lib.load(ROOT / "params.yaml")


def _params(sweep: list[float]) -> Settings:
    return replace(DEFAULT, prune=replace(DEFAULT.prune, sweep=tuple(sweep), sparsity=sweep[0]))


def _write_variant(model: str, fmt: str) -> None:
    evaluation = {
        "variant": paths.variant_name(model, fmt),
        "accuracy": 0.9,
        "accuracy_ci_low": 0.8,
        "accuracy_ci_high": 0.95,
        "balanced_accuracy": 0.9,
        "roc_auc": 0.9,
        "threshold": 0.5,
        "agreement_with_keras_baseline": 1,
        "latency_ms": {"median": 1, "p25": 1, "p75": 1, "iqr": 0},
        "kernels": "xnnpack",
        "kernel_zeros_in_file": 0,
        "multiply_accumulates": 1000,
    }
    if fmt == "int8":  # TFLite Micro's arena, and the RAM with the 3,072-byte image (`evaluate`)
        evaluation |= {"tflm_arena_bytes": 1000, "ram_bytes": 4072}
    write_json(paths.evaluate_metrics_path(model, fmt), evaluation)
    write_json(paths.confusion_path(model, fmt), [{"actual": 1, "predicted": 1}, {"actual": 0, "predicted": 1}])
    write_json(paths.validation_predictions_path(model, fmt), {"labels": [1, 0], "probabilities": [0.7, 0.2]})
    if model.startswith("students/"):  # `evaluate-student` also runs them on TFLite Micro
        answers = [{"actual": 1, "predicted": 0}, {"actual": 0, "predicted": 0}]
        write_json(paths.tflm_confusion_path(model, fmt), answers)
    if model != "deploy":
        path = paths.convert_metrics_path(model)
        converted = json.loads(path.read_text()) if path.exists() else {}
        write_json(path, converted | {fmt: {"size_bytes": 100, "compressed_bytes": 50}})


def _write_run(params: Settings, lut_deploy: bool = False) -> None:
    for model, fmt in paths.variants(params):
        _write_variant(model, fmt)
    for sparsity in params.prune.sweep:
        write_json(paths.prune_metrics_path(sparsity), {"sparsity_measured": {"prunable": sparsity}})
    write_json(
        paths.DEPLOY_METRICS, {"size_bytes": 90, "compressed_bytes": 40, "sparsity_after_pruning": {"prunable": 0.5}}
    )
    lut = {"size_bytes": 50, "tflm_arena_bytes": 1234}
    write_json(paths.MICRO_METRICS, {"int8_lut": lut} if lut_deploy else {"int8_lut": None})


def test_rows_follow_the_sweep_not_the_stale_files(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_run(_params([0.5, 0.7, 0.8]))  # an earlier run's files stay on disk (DVC does not delete them)
    _write_run(_params([0.5, 0.9]))
    variants = [row["variant"] for row in rows.collect(_params([0.5, 0.9]))]
    assert "pruned_90_int8" in variants and "pruned_50_int8_sparse" in variants
    assert not any(name.startswith(("pruned_70", "pruned_80")) for name in variants)
    assert variants[0] == "baseline_float32" and "deploy_int8" in variants
    assert variants[-3:] == ["student_b7_96_c8_int8", "student_b7_96_p2t2_c8_int8", "student_b7_96_p2t2_c8_labels_int8"]
    assert len(variants) == 4 + 2 * (4 + 1) + 1 + 3  # baseline, two sweeps (+ sparse), deploy, three students


def test_students_carry_their_tflite_micro_answers(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_run(_params([0.5]))
    by_variant = {row["variant"]: row for row in rows.collect(_params([0.5]))}
    assert by_variant["student_b7_96_p2t2_c8_int8"]["correct"] == [1, 0]
    assert by_variant["student_b7_96_p2t2_c8_int8"]["tflm_correct"] == [0, 1]
    # A student that runs blocks 0-2 in patches says so in its note; a whole-image one does not.
    assert by_variant["student_b7_96_p2t2_c8_int8"]["note"].endswith("blocks to 2 in 2×2 patches")
    assert by_variant["student_b7_96_c8_int8"]["note"].endswith("distilled")
    assert by_variant["deploy_int8"]["tflm_correct"] is None  # its TFLM run is `micro`'s, on its own images


def test_a_board_stores_the_compressed_deploy_model_where_micro_made_one(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_run(_params([0.5]))
    plain = {row["variant"]: row for row in rows.collect(_params([0.5]))}
    assert all(row["flash_bytes"] == row["size_bytes"] and row["lut"] is None for row in plain.values())
    _write_run(_params([0.5]), lut_deploy=True)
    deploy = rows.find(rows.collect(_params([0.5])), "deploy_int8")
    assert (deploy["flash_bytes"], deploy["size_bytes"], deploy["tflm_arena_bytes"]) == (50, 90, 1234)
    assert deploy["ram_bytes"] == 1234 + 3072  # the compressed model's arena, and the same image


def test_a_board_stores_a_students_device_file(tmp_path: Path, monkeypatch):
    """Stripped (and compressed where that shrank it) by `student`: its bytes, with the arena `evaluate` measured."""
    monkeypatch.chdir(tmp_path)
    _write_run(_params([0.5]))
    evaluation = json.loads(paths.evaluate_metrics_path("students/b7_96_c8", "int8").read_text())
    write_json(
        paths.evaluate_metrics_path("students/b7_96_c8", "int8"),
        evaluation | {"tflm_arena_bytes": 777, "ram_bytes": 777 + 3072},
    )
    lut = {"kernels": 3, "kernel_bytes_int8": 40, "kernel_bytes_lut": 20}
    for compressed in (None, lut):
        converted = {"size_bytes": 100, "compressed_bytes": 50, "device_bytes": 60, "lut": compressed}
        write_json(paths.convert_metrics_path("students/b7_96_c8"), {"int8": converted})
        row = rows.find(rows.collect(_params([0.5])), "student_b7_96_c8_int8")
        assert (row["flash_bytes"], row["size_bytes"], row["tflm_arena_bytes"], row["ram_bytes"]) == (
            60,
            100,
            777,
            3849,
        )
        assert rows.lut_compressed(row) == (compressed is not None)


def test_a_missing_variant_is_a_user_error(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_run(_params([0.5]))
    with pytest.raises(UserError, match="pruned/0.9/float32.json is missing"):
        rows.collect(_params([0.5, 0.9]))
