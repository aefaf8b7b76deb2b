"""The recommendation: the best validation score among fitting models above the accuracy floor, smallest flash then
arena within a tolerance, and the true reason when nothing is recommended."""

from __future__ import annotations

import copy

from conftest import ROOT
from stages.lib import params as params_lib
from stages.lib import recommendation

PARAMS = params_lib.load(ROOT / "params.yaml")
BOARDS = {
    "big": {
        "description": "big",
        "sram_bytes": 512_000,
        "psram_bytes": 8_000_000,
        "flash_bytes": 16_000_000,
        "ram_reserve_bytes": 64_000,
        "flash_reserve_bytes": 1_000_000,
        "flash_images": 1,
    },
    "small": {
        "description": "small",
        "sram_bytes": 256_000,
        "psram_bytes": 0,
        "flash_bytes": 1_000_000,
        "ram_reserve_bytes": 64_000,
        "flash_reserve_bytes": 200_000,
        "flash_images": 1,
    },
}


def _params(**report) -> dict:
    params = copy.deepcopy(dict(PARAMS))
    params["report"] = dict(params["report"], targets=BOARDS, **report)
    return params


def _row(
    variant: str, accuracy: float, size: int, arena: int | None, auc: float | None = None, flash: int | None = None
) -> dict:
    """A row whose validation accuracy is `accuracy` (and AUC `auc`, else the same number); its test accuracy is
    deliberately the opposite ranking. `flash`: what the board stores, when not the file (a compressed model)."""
    return {
        "variant": variant,
        "validation_accuracy": accuracy,
        "validation_roc_auc": accuracy if auc is None else auc,
        "accuracy": 1 - accuracy,
        "size_bytes": size,
        "flash_bytes": size if flash is None else flash,
        "tflm_arena_bytes": arena,
    }


def test_a_board_stores_the_compressed_file():
    rows = [_row("clustered", 0.94, 1_200_000, 150_000, flash=700_000), _row("plain", 0.93, 400_000, 150_000)]
    advice = recommendation.recommend(rows, _params())
    assert advice["small"]["variant"] == "clustered"  # its 1.2 MB int8 file would not fit 1 MB of flash
    assert advice["small"]["fits"]["clustered"]["flash_needed_bytes"] == 700_000 + 200_000


def test_the_most_accurate_fitting_model_wins():
    rows = [_row("large", 0.95, 4_000_000, 1_600_000), _row("small", 0.935, 400_000, 150_000)]
    advice = recommendation.recommend(rows, _params())
    assert advice["big"]["variant"] == "large" and advice["small"]["variant"] == "small"


def test_scores_within_the_tolerance_are_a_tie_and_the_smaller_wins():
    rows = [_row("large", 0.9445, 948_664, 352_512), _row("small", 0.9415, 453_296, 188_080)]
    advice = recommendation.recommend(rows, _params(rank_tolerance=0.005))["big"]
    assert advice["variant"] == "small" and "within 0.005 of the best" in advice["reason"]
    assert recommendation.recommend(rows, _params(rank_tolerance=0.0))["big"]["variant"] == "large"
    # Among the tied, equal sizes leave the better score.
    rows = [_row("worse", 0.941, 453_296, 188_080), _row("better", 0.944, 453_296, 188_080)]
    assert recommendation.recommend(rows, _params(rank_tolerance=0.005))["big"]["variant"] == "better"


def test_a_tie_goes_to_the_smaller_and_sizes_within_tolerance_are_equal():
    rows = [_row("baseline_int8", 0.94, 4_295_064, 1_690_896), _row("deploy_int8", 0.94, 4_301_560, 1_600_000)]
    # 6,496 bytes of flash (0.15 %) are within the 2 % tolerance: the arena decides.
    assert recommendation.recommend(rows, _params(size_tolerance=0.02))["big"]["variant"] == "deploy_int8"
    # Without tolerance the smaller flash decides.
    assert recommendation.recommend(rows, _params(size_tolerance=0.0))["big"]["variant"] == "baseline_int8"


def test_the_reason_names_the_arena_when_it_is_the_cause():
    rows = [_row("baseline_int8", 0.946, 900_000, 1_690_896), _row("baseline_float32", 0.94, 14_000_000, None)]
    advice = recommendation.recommend(rows, _params())["small"]
    assert advice["variant"] is None
    assert "arena + reserve needs 1,754,896 B, 1,498,896 B more than the RAM" in advice["reason"]
    assert "85%" not in advice["reason"]


def test_the_reason_names_the_floor_when_accuracy_is_the_cause():
    advice = recommendation.recommend([_row("tiny", 0.70, 100_000, 50_000)], _params())["small"]
    assert advice["variant"] is None and "below the 85% floor" in advice["reason"]


def test_the_test_split_decides_nothing():
    rows = [_row("a", 0.93, 400_000, 150_000), _row("b", 0.96, 410_000, 150_000)]
    rows[0]["accuracy"], rows[1]["accuracy"] = 0.99, 0.80  # test accuracy says `a`; validation says `b`
    assert recommendation.recommend(rows, _params())["small"]["variant"] == "b"


def test_the_ranking_score_comes_from_params_and_the_floor_stays_on_accuracy():
    rows = [
        _row("sharper", 0.886, 900_000, 350_000, auc=0.946),  # fewer images right at its threshold, better ranking
        _row("luckier", 0.895, 400_000, 160_000, auc=0.935),
        _row("below_floor", 0.80, 300_000, 100_000, auc=0.99),
    ]
    by_auc = recommendation.recommend(rows, _params(rank_by="validation_roc_auc"))["big"]
    assert by_auc["variant"] == "sharper" and "of the 2 fitting models" in by_auc["reason"]
    assert "validation ROC AUC is within" in by_auc["reason"]
    by_accuracy = recommendation.recommend(rows, _params(rank_by="validation_accuracy"))["big"]
    assert by_accuracy["variant"] == "luckier" and "validation accuracy is within" in by_accuracy["reason"]


def test_the_reason_names_the_fitting_models_the_floor_left_out():
    rows = [_row("control", 0.892, 389_232, 164_512, auc=0.935), _row("distilled", 0.8498, 389_232, 164_512, 0.95)]
    advice = recommendation.recommend(rows, _params())["small"]
    assert advice["variant"] == "control"
    assert "of the 1 fitting models with validation accuracy >= 85% (below it: distilled 84.98%)" in advice["reason"]
    rows = [_row("control", 0.892, 389_232, 164_512)]
    assert "below it" not in recommendation.recommend(rows, _params())["small"]["reason"]
