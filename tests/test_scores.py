"""Scores against hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest

from stages.lib import scores


def test_classification_scores_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4])
    result = scores.classification_scores(labels, probabilities, 0.5)
    assert (result["true_negatives"], result["false_positives"], result["false_negatives"], result["true_positives"]) == (3, 1, 1, 1)
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
