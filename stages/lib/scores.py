"""Classification scores with their uncertainty: scikit-learn's metrics, statsmodels' Wilson interval and
McNemar test, and a paired bootstrap interval for the difference of two models on the same images."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
# Probabilities are clipped this far from 0 and 1 before their logit (int8 outputs reach both exactly).
LOGIT_CLIP = 1e-4


def best_accuracy_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every candidate threshold (0.5 and each prediction to 4 decimals) that reaches the best accuracy, ascending."""
    candidates = np.unique(np.concatenate([[0.5], np.round(probabilities, 4)]))
    accuracies = np.array([((probabilities >= t) == labels).mean() for t in candidates])
    return candidates[accuracies == accuracies.max()]


def accuracy_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the best accuracy on these predictions; ties go to the one nearest 0.5."""
    best = best_accuracy_thresholds(probabilities, labels)
    return float(best[np.argmin(np.abs(best - 0.5))])


def logistic_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Where a logistic fit of the label on the probability's logit crosses 1/2 (Platt scaling, unpenalised: C = inf).

    It uses every prediction, not only the few near the accuracy maximum's plateau. With one class, or scores
    that rank the classes backwards, no fit means anything: 0.5."""
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return 0.5
    clipped = np.clip(np.asarray(probabilities, np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    with warnings.catch_warnings():  # separable data: the slope grows without bound, the crossing stays put
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LogisticRegression(C=np.inf).fit(np.log(clipped / (1 - clipped))[:, None], labels)
    slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return float(1 / (1 + np.exp(intercept / slope))) if slope > 0 else 0.5


def decision_threshold(probabilities: np.ndarray, labels: np.ndarray, rule: str) -> float:
    """A model's decision threshold from its validation predictions, by `threshold.rule` in params.yaml."""
    rules = {"logistic": logistic_threshold, "accuracy": accuracy_threshold}
    if rule not in rules:
        raise ValueError(f"unknown threshold rule {rule!r}; expected one of {', '.join(rules)}")
    return rules[rule](np.asarray(probabilities), np.asarray(labels))


def wilson_interval(successes: int, total: int) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (sound near 0 and 1 and for small n)."""
    if total == 0:
        return (0.0, 1.0)
    low, high = proportion_confint(successes, total, alpha=1 - CONFIDENCE, method="wilson")
    return (max(0.0, float(low)), min(1.0, float(high)))


def classification_scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float | int]:
    """Accuracy (with 95 % Wilson CI), balanced accuracy, precision, recall, F1, ROC AUC and the confusion counts."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in metrics.confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    low, high = wilson_interval(tp + tn, len(labels))
    both_classes = len(np.unique(labels)) == 2
    return {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "accuracy_ci95_low": low,
        "accuracy_ci95_high": high,
        "balanced_accuracy": float(metrics.balanced_accuracy_score(labels, predicted))
        if both_classes
        else float("nan"),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else float("nan"),
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "true_positives": tp,
        "test_images": len(labels),
    }


def mcnemar_p_value(reference_correct: np.ndarray, other_correct: np.ndarray) -> float:
    """Exact two-sided McNemar test: do two models' error rates on the same images differ?"""
    reference, other = np.asarray(reference_correct, bool), np.asarray(other_correct, bool)
    table = [
        [int((reference & other).sum()), int((reference & ~other).sum())],
        [int((~reference & other).sum()), int((~reference & ~other).sum())],
    ]
    return float(mcnemar(table, exact=True).pvalue)


def paired_difference(
    reference_correct: np.ndarray, other_correct: np.ndarray, resamples: int, seed: int
) -> dict[str, float]:
    """Accuracy of `other` minus `reference` on the same images, with a 95 % paired bootstrap interval.

    Images are resampled with replacement and both models are scored on the same resample, so the
    interval carries the pairing (the models' errors are correlated) that two separate intervals lose.
    """
    reference, other = np.asarray(reference_correct, float), np.asarray(other_correct, float)
    difference = other - reference
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(difference), size=(resamples, len(difference)))
    means = difference[draws].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"difference": float(difference.mean()), "low": float(low), "high": float(high)}
