"""The report's logic on synthetic metric sets: the recommendation and the verdicts follow the data."""
from __future__ import annotations

from stages.lib import summary
from stages.lib.figures import pareto_front

TARGETS = {
    "esp32s3_psram": {"description": "ESP32-S3 + PSRAM", "sram_bytes": 524288, "psram_bytes": 8388608, "flash_bytes": 8388608},
    "no_psram": {"description": "no PSRAM", "sram_bytes": 524288, "psram_bytes": 0, "flash_bytes": 16777216},
}


def _row(variant: str, accuracy: float, size: int, arena: int | None, latency: float = 10.0, sparsity: float = 0.0, fmt: str | None = None) -> dict:
    model = variant.rsplit("_", 1)[0] if not variant.startswith("pruned_") else f"pruned/{int(variant.split('_')[1]) / 100}"
    fmt = fmt or variant.split("_")[-1]
    correct = [1] * round(accuracy * 100) + [0] * (100 - round(accuracy * 100))
    return {"variant": variant, "model": model, "format": fmt, "note": "", "sparsity_target": sparsity, "sparsity_measured": sparsity,
            "accuracy": accuracy, "accuracy_ci95": [accuracy - 0.05, accuracy + 0.05], "balanced_accuracy": accuracy, "roc_auc": 0.9,
            "agreement_with_keras_baseline": 1.0, "latency_ms": latency, "latency_iqr_ms": 0.1, "kernels": "xnnpack",
            "size_bytes": size, "compressed_bytes": size // 2, "tflm_arena_bytes": arena, "correct": correct}


def _rows(pruned_accuracy: float, deploy_arena: int) -> list[dict]:
    return summary.compare_to_baseline([
        _row("baseline_float32", 0.93, 15_000_000, None, latency=3.0),
        _row("baseline_int8", 0.92, 4_300_000, 3_000_000, latency=1.2),
        _row("pruned_50_float32", 0.93, 15_000_000, None, latency=3.0, sparsity=0.5),
        _row("pruned_50_int8", pruned_accuracy, 4_200_000, 3_000_000, latency=1.2, sparsity=0.5),
        _row("deploy_int8", pruned_accuracy, 4_100_000, deploy_arena, latency=1.2, sparsity=0.5),
    ])


def test_recommendation_changes_with_the_data():
    good = summary.recommend(_rows(0.92, 400_000), TARGETS, accuracy_floor=0.9)
    worse = summary.recommend(_rows(0.80, 400_000), TARGETS, accuracy_floor=0.9)
    assert good["esp32s3_psram"]["variant"] == "deploy_int8" and good["no_psram"]["variant"] == "deploy_int8"
    assert worse["esp32s3_psram"]["variant"] == "baseline_int8"  # the pruned models fell under the floor
    assert worse["no_psram"]["variant"] is None  # baseline_int8's 3 MB arena needs PSRAM


def test_arena_decides_the_board():
    big_arena = summary.recommend(_rows(0.92, 3_000_000), TARGETS, accuracy_floor=0.9)
    assert big_arena["esp32s3_psram"]["arena_memory"] == "PSRAM" and big_arena["no_psram"]["variant"] is None


def test_size_and_accuracy_change_against_the_baseline():
    rows = _rows(0.90, 400_000)
    deploy = summary.find(rows, "deploy_int8")
    assert round(deploy["accuracy_change_pp"], 6) == -3.0
    assert deploy["compressed_reduction"] == 15_000_000 // 2 / (4_100_000 // 2)
    assert 0 < deploy["mcnemar_p"] < 0.5


def test_verdicts_follow_the_numbers():
    verdicts = {c["claim"]: c["verdict"] for c in summary.conclusions(_rows(0.92, 400_000))}
    assert verdicts["Quantization costs little accuracy (uniform precision change)."] == "supported"
    assert verdicts["Accuracy declines sharply beyond ~70 % sparsity."] == "not testable here"
    assert verdicts["Pruning needs sparse kernels to run faster."] == "supported"
    bad = {c["claim"]: c["verdict"] for c in summary.conclusions(_rows(0.70, 400_000))}
    assert bad["~50 % pruning + int8: 6-8x smaller, < 2 pp accuracy loss, > 94 % accuracy."] == "not supported"


def test_pareto_front():
    points = [(1.0, 0.80), (2.0, 0.90), (3.0, 0.85), (4.0, 0.95), (0.5, 0.70)]
    assert pareto_front(points) == [4, 0, 1, 3]
