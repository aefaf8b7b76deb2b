"""Scores against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from stages.lib.core import scores
from stages.lib.core.settings import Threshold


def _rule(rule: str) -> Threshold:
    """params.yaml's `threshold` section with this rule."""
    return Threshold(rule=rule, logit_clip=1e-4, accuracy_decimals=4)


def test_classification_scores_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.7, 0.3, 0.9, 0.4])
    result = scores.classification_scores(labels, probabilities, 0.5, 0.95)
    assert scores.accuracy(labels, probabilities, 0.5) == result["accuracy"]
    assert "accuracy_ci_low" not in scores.classification_scores(labels, probabilities, 0.5)
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
    low, high = scores.wilson_interval(90, 100, 0.95)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)


def test_mcnemar_exact():
    reference = np.array([True] * 10 + [False] * 0)
    other = np.array([True] * 4 + [False] * 6)  # 6 discordant pairs, all one way
    assert scores.mcnemar_p_value(reference, other) == pytest.approx(2 / 64)
    assert scores.mcnemar_p_value(reference, reference) == 1.0


def test_wilson_interval_at_the_edges():
    low, high = scores.wilson_interval(0, 20, 0.95)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-3)
    low, high = scores.wilson_interval(20, 20, 0.95)
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
    first = scores.paired_difference(reference, other, resamples=2000, seed=1, confidence=0.95)
    assert first == scores.paired_difference(reference, other, resamples=2000, seed=1, confidence=0.95)
    assert first["low"] <= first["difference"] <= first["high"]
    assert first["difference"] == pytest.approx(other.mean() - reference.mean())


def test_accuracy_threshold_maximises_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array([0.1, 0.6, 0.65, 0.7, 0.8, 0.9])
    threshold = scores.accuracy_threshold(probabilities, labels, 4)
    assert 0.65 < threshold <= 0.7 and ((probabilities >= threshold) == labels).all()
    assert scores.accuracy_threshold(np.array([0.2, 0.8]), np.array([0, 1]), 4) == 0.5  # ties go to 0.5


def test_best_accuracy_thresholds_is_the_whole_plateau():
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([0.1, 0.3, 0.6, 0.9])
    # 0.5, 0.6 and every prediction above 0.3 up to 0.6 separate the classes: the candidates among them.
    np.testing.assert_array_equal(scores.best_accuracy_thresholds(probabilities, labels, 4), [0.5, 0.6])
    assert scores.accuracy_threshold(probabilities, labels, 4) == 0.5


def test_logistic_threshold_is_where_the_fitted_probability_crosses_one_half():
    # Labels drawn from a known logistic model of the score's logit: P(y=1) = sigmoid(2 * logit(p) - 1), which is
    # 1/2 at logit(p) = 0.5, p = sigmoid(0.5) = 0.622.
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 20000)
    labels = (rng.random(logits.size) < 1 / (1 + np.exp(-(2 * logits - 1)))).astype(int)
    threshold = scores.logistic_threshold(1 / (1 + np.exp(-logits)), labels, 1e-4)
    assert threshold == pytest.approx(1 / (1 + np.exp(-0.5)), abs=0.01)


def test_logistic_threshold_moves_less_than_the_accuracy_maximum():
    """On resamples of 300 noisy predictions, the fitted crossing spreads less than the accuracy maximum's."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, 300)
    labels = (rng.random(300) < 1 / (1 + np.exp(-2 * logits))).astype(int)
    probabilities = 1 / (1 + np.exp(-logits))
    picks = {rule: [] for rule in ("logistic", "accuracy")}
    for _ in range(40):
        index = rng.integers(0, 300, 300)
        for rule, values in picks.items():
            values.append(scores.decision_threshold(probabilities[index], labels[index], _rule(rule)))
    assert np.std(picks["logistic"]) < np.std(picks["accuracy"])


def test_logistic_threshold_edge_cases():
    assert scores.logistic_threshold(np.array([0.2, 0.9]), np.array([1, 1]), 1e-4) == 0.5  # one class
    assert scores.logistic_threshold(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1]), 1e-4) == 0.5  # backwards
    separable = scores.logistic_threshold(np.array([0.0, 0.1, 0.3, 0.9, 1.0]), np.array([0, 0, 0, 1, 1]), 1e-4)
    assert 0.3 < separable < 0.9  # the slope runs away, the crossing stays between the classes


def test_every_rule_in_params_has_an_implementation():
    from stages.lib.core.params import THRESHOLD_RULES

    for rule in THRESHOLD_RULES:
        assert 0 < scores.decision_threshold(np.array([0.2, 0.4, 0.6, 0.8]), np.array([0, 1, 0, 1]), _rule(rule)) < 1
    with pytest.raises(ValueError, match="unknown threshold rule"):
        scores.decision_threshold(np.array([0.5]), np.array([1]), _rule("median"))


def test_bootstrap_roc_aucs_match_scikit_learn_on_every_draw_ties_included():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    probabilities = np.round(rng.random(60) * 0.5 + labels * 0.3, 1)  # coarse: many tied scores
    draws = rng.integers(0, 60, size=(20, 60))
    expected = [scores.roc_auc(labels[d], probabilities[d]) for d in draws]
    assert scores.bootstrap_roc_aucs(labels, probabilities, draws) == pytest.approx(expected)
    one_class = np.zeros((1, 60), int) + int(np.flatnonzero(labels == 1)[0])
    assert np.isnan(scores.bootstrap_roc_aucs(labels, probabilities, one_class)).all()


def test_paired_auc_differences_pair_the_models_and_repeat():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    good = labels + rng.normal(0, 0.6, 300)
    nudged = good + rng.normal(0, 0.05, 300)  # nearly the same model: a tiny difference, a narrow interval
    poor = labels + rng.normal(0, 3.0, 300)
    others = {"same": good, "nudged": nudged, "poor": poor}
    result = scores.paired_auc_differences(labels, good, others, 2000, 7, 0.95)
    assert result["same"] == {"difference": 0.0, "low": 0.0, "high": 0.0}
    nudged_result = result["nudged"]
    assert nudged_result["low"] <= nudged_result["difference"] <= nudged_result["high"]
    assert nudged_result["low"] < 0 < nudged_result["high"] and nudged_result["high"] - nudged_result["low"] < 0.02
    assert result["poor"]["high"] < 0  # clearly worse: the whole interval below zero
    assert result == scores.paired_auc_differences(labels, good, others, 2000, 7, 0.95)


def _three_classes(seed: int = 0, count: int = 90) -> tuple[np.ndarray, np.ndarray]:
    """Labels of three classes and softmax rows that favour the right class more often than not."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1, 2], count // 3)
    logits = rng.normal(size=(count, 3)) + 1.5 * np.eye(3)[labels]
    return labels, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_more_than_two_classes_are_decided_by_the_argmax_without_a_threshold():
    labels, probabilities = _three_classes()
    assert scores.decision_threshold(probabilities, labels, None) is None
    np.testing.assert_array_equal(scores.decide(probabilities, None), probabilities.argmax(axis=1))
    assert scores.decide(np.array([0.2, 0.5, 0.7]), 0.5).tolist() == [0, 1, 1]


def test_three_class_scores_match_scikit_learn():
    labels, probabilities = _three_classes()
    result = scores.classification_scores(labels, probabilities, None, 0.95)
    predicted = probabilities.argmax(axis=1)
    assert result["accuracy"] == metrics.accuracy_score(labels, predicted)
    assert result["balanced_accuracy"] == metrics.balanced_accuracy_score(labels, predicted)
    assert result["macro_f1"] == pytest.approx(metrics.f1_score(labels, predicted, average="macro"))
    assert result["roc_auc"] == pytest.approx(metrics.roc_auc_score(labels, probabilities, multi_class="ovr"))
    assert result["class_2_recall"] == metrics.recall_score(labels, predicted, average=None)[2]
    assert result["accuracy_ci_low"] < result["accuracy"] < result["accuracy_ci_high"]
    # int8 softmax rows need not sum to 1: the macro AUC is computed class by class, as scikit-learn's would be.
    assert scores.roc_auc(labels, probabilities * 0.9) == pytest.approx(result["roc_auc"])
    assert np.isnan(scores.roc_auc(labels[labels < 2], probabilities[labels < 2]))  # a class with no image


def test_the_bootstrapped_macro_auc_is_the_macro_auc_of_each_draw():
    labels, probabilities = _three_classes()
    draws = np.random.default_rng(1).integers(0, len(labels), size=(5, len(labels)))
    aucs = scores.bootstrap_roc_aucs(labels, probabilities, draws)
    for draw, auc in zip(draws, aucs, strict=True):
        assert auc == pytest.approx(scores.roc_auc(labels[draw], probabilities[draw]))
