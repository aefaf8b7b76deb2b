"""The table cells the report and the README share."""

from __future__ import annotations

from stages.lib.report import cells


def test_labels_name_each_kind_of_variant():
    assert cells.label({"model": "baseline", "format": "int8"}) == "baseline int8"
    pruned = {"model": "pruned/0.7", "format": "int8_sparse", "sparsity_target": 0.7}
    assert cells.label(pruned) == "pruned 70% + int8, sparse-encoded"
    assert cells.label({"model": "students/b7_64", "format": "int8", "note": "labels only"}) == (
        "student b7_64: labels only"
    )


def test_numbers_keep_their_sign_interval_and_units():
    row = {
        "accuracy": 0.934,
        "accuracy_ci": [0.902, 0.956],
        "accuracy_change": {"pp": 0.0, "low_pp": -2.4, "high_pp": 2.4},
        "size_bytes": 950_000,
        "compressed_bytes": 730_000,
        "compressed_reduction": 18.8,
        "tflm_arena_bytes": 352_512,
        "ram_bytes": 502_040,
    }
    assert cells.row_accuracy(row) == "93.4% (90.2%–95.6%)"
    assert cells.change_vs_baseline("student_b7_64_int8", row) == "+0.0 (-2.4 to +2.4)"
    assert cells.change_vs_baseline(cells.BASELINE, row) == "–"
    assert cells.sizes(row) == "0.95 MB | 0.73 MB | 18.8×"
    assert cells.ram(row) == "502,040 B (arena 352,512 B)" and cells.ram({"ram_bytes": None}) == "–"
    # A patch-based deployment's arena is its largest part's; its RAM adds the block-output buffer and the image.
    patched = {"tflm_arena_bytes": 146_608, "ram_bytes": 188_080, "deployment": {"patches": "2x2 through block 2"}}
    assert cells.ram(patched) == "188,080 B (arena 146,608 B, in patches)"


def test_distillation_sentence_closes_its_own_brackets():
    gain = {"student": "b7_64", "control": "b7_64_labels", "pp": -1.2, "low_pp": -3.3, "high_pp": 0.9}
    head = (
        "`b7_64` minus its labels-only control `b7_64_labels` on TFLite Micro: -1.2 pp "
        "(95 % paired bootstrap interval -3.3 to +0.9"
    )
    assert cells.level(0.95) == "95 %" and cells.level(0.9) == "90 %"
    assert cells.distillation(gain, "95 %") == head + ")"
    assert cells.distillation(gain, "95 %", "McNemar p 0.39") == head + "; McNemar p 0.39)"
    tflm = {"accuracy": 0.892, "accuracy_ci_low": 0.854, "accuracy_ci_high": 0.921}
    assert cells.tflm_accuracy(tflm) == "89.2% (85.4%–92.1%)"
