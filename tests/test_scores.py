"""Scores against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from stages.lib import scores


def test_classification_scores_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4])
    result = scores.classification_scores(labels, probabilities, 0.5)
    assert (
        result["true_negatives"],
        result["false_positives"],
        result["false_negatives"],
        result["true_positives"],
    ) == (3, 1, 1, 1)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["balanced_accuracy"] == pytest.approx((0.75 + 0.5) / 2)
    assert result["precision"] == pytest.approx(0.5) and result["recall"] == pytest.approx(0.5)
    assert result["roc_auc"] == pytest.approx(7 / 8)  # 7 of the 8 positive/negative pairs ranked right


def test_wilson_interval_known_value():
    low, high = scores.wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)


def test_mcnemar_exact():
    reference = np.array([True] * 10 + [False] * 0)
    other = np.array([True] * 4 + [False] * 6)  # 6 discordant pairs, all one way
    assert scores.mcnemar_p_value(reference, other) == pytest.approx(2 / 64)
    assert scores.mcnemar_p_value(reference, reference) == 1.0


def test_wilson_interval_at_the_edges():
    low, high = scores.wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-3)
    low, high = scores.wilson_interval(20, 20)
    assert low == pytest.approx(0.8389, abs=1e-3) and high == 1.0


def test_mcnemar_is_symmetric_in_the_discordant_directions():
    reference = np.array([True] * 8 + [False] * 2 + [True] * 10)
    other = np.array([False] * 8 + [True] * 2 + [True] * 10)  # 8 lost, 2 gained: exact p = 2 * P(X <= 2 | 10, 1/2)
    expected = 2 * (1 + 10 + 45) / 2**10
    assert scores.mcnemar_p_value(reference, other) == pytest.approx(expected)
    assert scores.mcnemar_p_value(other, reference) == pytest.approx(expected)


def test_paired_difference_interval_contains_the_difference_and_repeats():
    rng = np.random.default_rng(0)
    reference = rng.random(300) < 0.9
    other = reference.copy()
    other[:15] = ~other[:15]
    first = scores.paired_difference(reference, other, resamples=2000, seed=1)
    assert first == scores.paired_difference(reference, other, resamples=2000, seed=1)
    assert first["low"] <= first["difference"] <= first["high"]
    assert first["difference"] == pytest.approx(other.mean() - reference.mean())
