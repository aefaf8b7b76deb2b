"""The recommendation: among the fitting models above the accuracy floor, those not significantly worse than the best
on validation (paired bootstrap) are tied and the smallest wins (flash, then arena within a tolerance); the true reason
when nothing is recommended."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from conftest import ROOT
from stages.lib.core import params as params_lib
from stages.lib.core import scores
from stages.lib.core.settings import Board, Report
from stages.lib.report import recommendation

PARAMS = params_lib.load(ROOT / "params.yaml")
BOARDS = {
    "big": Board("big", 512_000, 8_000_000, 16_000_000, 64_000, 1_000_000, 1, 10.0, "a test figure", 50.0),
    "small": Board("small", 256_000, 0, 1_000_000, 64_000, 200_000, 1, 10.0, "a test figure", 50.0),
}


def _params(**report) -> tuple[Report, float, int]:
    """The report settings with the test boards, and the confidence and seed `recommend` takes."""
    # 2,000 resamples: the ties these rows are built for are far from the interval's edge either way.
    config = replace(PARAMS.report, targets=BOARDS, bootstrap_resamples=2000, **report)
    return config, PARAMS.statistics.confidence, PARAMS.seed


# A validation split of elpv's size and balance, and one model's scores on it; the rows below are that model with
# noise added: a little (a nudge, as another CPU or seed gives) or a lot (a clearly worse model).
_RNG = np.random.default_rng(0)
LABELS = np.array([1] * 107 + [0] * 226)
BASE = LABELS + _RNG.normal(0, 0.8, len(LABELS))
NUDGE, WORSE = 0.05, 2.0


def _row(
    variant: str,
    size: int,
    arena: int | None,
    noise: float = 0.0,
    seed: int = 1,
    flash: int | None = None,
    accuracy: float = 0.9,
    threshold: float = 0.5,
) -> dict:
    """A row whose validation probabilities are BASE plus `noise` (seeded by `seed`), its validation AUC computed
    from them; `accuracy` is its validation accuracy (what the floor reads), and its test accuracy is deliberately
    the opposite ranking. `flash`: what the board stores, when not the file (a compressed model)."""
    probabilities = BASE + np.random.default_rng(seed).normal(0, noise, len(LABELS)) if noise else BASE.copy()
    return {
        "variant": variant,
        "validation_accuracy": accuracy,
        "validation_roc_auc": scores.roc_auc(LABELS, probabilities),
        "validation_labels": LABELS,
        "validation_probabilities": probabilities,
        "threshold": threshold,
        "accuracy": 1 - accuracy,
        "size_bytes": size,
        "flash_bytes": size if flash is None else flash,
        "tflm_arena_bytes": arena,
        "ram_bytes": arena,
        "multiply_accumulates": 1_000_000,
    }


def test_a_board_stores_the_compressed_file():
    rows = [_row("clustered", 1_200_000, 150_000, flash=700_000), _row("plain", 400_000, 150_000, WORSE)]
    advice = recommendation.recommend(rows, *_params())
    assert advice["small"]["variant"] == "clustered"  # its 1.2 MB int8 file would not fit 1 MB of flash
    assert advice["small"]["fits"]["clustered"]["flash_needed_bytes"] == 700_000 + 200_000


def test_a_significantly_better_model_wins_over_a_smaller_one():
    rows = [_row("large", 4_000_000, 1_600_000), _row("small", 400_000, 150_000, WORSE)]
    advice = recommendation.recommend(rows, *_params())
    assert advice["big"]["variant"] == "large" and advice["small"]["variant"] == "small"
    assert advice["big"]["tied"] == ["large"] and advice["big"]["differences_from_best"]["small"]["high"] < 0


def test_models_not_significantly_worse_are_tied_and_the_smaller_wins():
    rows = [_row("large", 948_664, 352_512), _row("small", 453_296, 188_080, NUDGE)]
    advice = recommendation.recommend(rows, *_params())["big"]
    assert advice["variant"] == "small" and set(advice["tied"]) == {"large", "small"}
    assert "not significantly below the best's" in advice["reason"] and "among the 2 fitting models" in advice["reason"]
    difference = advice["differences_from_best"]["small"]
    assert difference["low"] <= 0 <= difference["high"]
    # Among the tied, equal sizes leave the fewer MACs, then the first listed: never the score, a tie by definition.
    rows = [_row("first", 453_296, 188_080, NUDGE, seed=2), _row("better", 453_296, 188_080)]
    assert recommendation.recommend(rows, *_params())["big"]["variant"] == "first"
    rows[1]["multiply_accumulates"] = 900_000
    assert recommendation.recommend(rows, *_params())["big"]["variant"] == "better"


def test_the_pick_does_not_flip_when_a_nudge_reorders_two_tied_models():
    """What a second CPU class or seed does: the same two models, each nudged; the best changes, the pick does not."""
    picks, bests = set(), set()
    for seed in range(1, 7):
        rows = [_row("large", 948_664, 352_512, NUDGE, seed=seed), _row("small", 453_296, 188_080, NUDGE, 100 + seed)]
        advice = recommendation.recommend(rows, *_params())["big"]
        picks.add(advice["variant"])
        bests.add(advice["best"])
    assert picks == {"small"} and bests == {"large", "small"}


def test_a_tie_goes_to_the_smaller_and_sizes_within_tolerance_are_equal():
    rows = [_row("baseline_int8", 4_295_064, 1_690_896), _row("deploy_int8", 4_301_560, 1_600_000)]
    # 6,496 bytes of flash (0.15 %) are within the 2 % tolerance: the arena decides.
    assert recommendation.recommend(rows, *_params(size_tolerance=0.02))["big"]["variant"] == "deploy_int8"
    # Without tolerance the smaller flash decides.
    assert recommendation.recommend(rows, *_params(size_tolerance=0.0))["big"]["variant"] == "baseline_int8"


def test_the_reason_names_the_arena_when_it_is_the_cause():
    rows = [_row("baseline_int8", 900_000, 1_690_896), _row("baseline_float32", 14_000_000, None)]
    advice = recommendation.recommend(rows, *_params())["small"]
    assert advice["variant"] is None
    assert "arena + reserve needs 1,754,896 B, 1,498,896 B more than the RAM" in advice["reason"]
    assert "85%" not in advice["reason"]


def test_the_reason_names_the_floor_when_accuracy_is_the_cause():
    advice = recommendation.recommend([_row("tiny", 100_000, 50_000, accuracy=0.70)], *_params())["small"]
    assert advice["variant"] is None and "below the 85% floor" in advice["reason"]


def test_the_test_split_decides_nothing():
    rows = [_row("a", 400_000, 150_000, WORSE), _row("b", 410_000, 150_000)]
    rows[0]["accuracy"], rows[1]["accuracy"] = 0.99, 0.80  # test accuracy says `a`; validation says `b`
    assert recommendation.recommend(rows, *_params())["small"]["variant"] == "b"


def test_the_ranking_score_comes_from_params_and_the_floor_stays_on_accuracy():
    # `sharper` ranks the images well but its threshold calls every image negative; `luckier` ranks worse and
    # thresholds well. The floor reads the stated validation accuracy; the tie test pairs the images' own scores.
    rows = [
        _row("sharper", 900_000, 350_000, threshold=9.0, accuracy=0.886),
        _row("luckier", 400_000, 160_000, 1.0, threshold=0.5, accuracy=0.895),
        _row("below_floor", 300_000, 100_000, accuracy=0.80),
    ]
    by_auc = recommendation.recommend(rows, *_params(rank_by="validation_roc_auc"))["big"]
    assert by_auc["variant"] == "sharper" and "among the 2 fitting models" in by_auc["reason"]
    assert "validation ROC AUC is not significantly below" in by_auc["reason"]
    by_accuracy = recommendation.recommend(rows, *_params(rank_by="validation_accuracy"))["big"]
    assert by_accuracy["variant"] == "luckier"
    assert "validation accuracy is not significantly below" in by_accuracy["reason"]


def test_the_reason_names_the_fitting_models_the_floor_left_out():
    rows = [_row("control", 389_232, 164_512, accuracy=0.892), _row("distilled", 389_232, 164_512, accuracy=0.8498)]
    advice = recommendation.recommend(rows, *_params())["small"]
    assert advice["variant"] == "control"
    assert "among the 1 fitting models with validation accuracy >= 85% (below it: distilled 84.98%)" in advice["reason"]
    rows = [_row("control", 389_232, 164_512, accuracy=0.892)]
    assert "below it" not in recommendation.recommend(rows, *_params())["small"]["reason"]
