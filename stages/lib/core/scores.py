"""Classification scores with their uncertainty: scikit-learn's metrics, statsmodels' Wilson interval and
McNemar test, and paired bootstrap intervals for the difference of two models on the same images (accuracy or ROC
AUC).

Probabilities are one row per image: P(class 1) (a vector) for a two-class model's sigmoid, or every class's
probability (N x K) for a softmax over K > 2 classes, whose decision is the argmax and whose AUC is the macro
one-vs-rest mean."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats
from sklearn import metrics
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.proportion import proportion_confint

if TYPE_CHECKING:
    from stages.lib.core.settings import Threshold


def best_accuracy_thresholds(probabilities: np.ndarray, labels: np.ndarray, decimals: int) -> np.ndarray:
    """Every candidate threshold (0.5 and each prediction to `decimals`) that reaches the best accuracy, ascending."""
    candidates = np.unique(np.concatenate([[0.5], np.round(probabilities, decimals)]))
    accuracies = np.array([((probabilities >= t) == labels).mean() for t in candidates])
    return candidates[accuracies == accuracies.max()]


def accuracy_threshold(probabilities: np.ndarray, labels: np.ndarray, decimals: int) -> float:
    """The threshold with the best accuracy on these predictions; ties go to the one nearest 0.5."""
    best = best_accuracy_thresholds(probabilities, labels, decimals)
    return float(best[np.argmin(np.abs(best - 0.5))])


def logistic_threshold(probabilities: np.ndarray, labels: np.ndarray, clip: float) -> float:
    """Where a logistic fit of the label on the probability's logit crosses 1/2 (Platt scaling, unpenalised: C = inf).

    Probabilities are clipped `clip` from 0 and 1 before their logit (int8 outputs reach both exactly).
    It uses every prediction, not only the few near the accuracy maximum's plateau. With one class, or scores
    that rank the classes backwards, no fit means anything: 0.5."""
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return 0.5
    clipped = np.clip(np.asarray(probabilities, np.float64), clip, 1 - clip)
    with warnings.catch_warnings():  # separable data: the slope grows without bound, the crossing stays put
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = LogisticRegression(C=np.inf).fit(np.log(clipped / (1 - clipped))[:, None], labels)
    slope, intercept = float(fit.coef_[0, 0]), float(fit.intercept_[0])
    return float(1 / (1 + np.exp(intercept / slope))) if slope > 0 else 0.5


def is_multiclass(probabilities: np.ndarray) -> bool:
    """N x K probabilities (three or more classes), not a vector of P(class 1)."""
    return np.asarray(probabilities).ndim == 2


def decision_threshold(probabilities: np.ndarray, labels: np.ndarray, config: Threshold) -> float | None:
    """A model's decision threshold from its validation predictions, by params.yaml's `threshold` section; None for
    more than two classes (the decision is the argmax)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if is_multiclass(probabilities):
        return None
    if config.rule == "logistic":
        return logistic_threshold(probabilities, labels, config.logit_clip)
    if config.rule == "accuracy":
        return accuracy_threshold(probabilities, labels, config.accuracy_decimals)
    raise ValueError(f"unknown threshold rule {config.rule!r}; expected logistic or accuracy")


def wilson_interval(successes: int, total: int, confidence: float) -> tuple[float, float]:
    """The Wilson score interval for a proportion at `confidence` (sound near 0 and 1 and for small n)."""
    if total == 0:
        return (0.0, 1.0)
    low, high = proportion_confint(successes, total, alpha=1 - confidence, method="wilson")
    return (max(0.0, float(low)), min(1.0, float(high)))


def decide(probabilities: np.ndarray, threshold: float | None) -> np.ndarray:
    """Each image's predicted class: P(class 1) >= threshold for two classes, the most probable class for more."""
    probabilities = np.asarray(probabilities)
    if is_multiclass(probabilities):
        return np.argmax(probabilities, axis=1)
    return (probabilities >= threshold).astype(np.int64)


def roc_auc(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """ROC AUC; for K > 2 classes the macro mean of the K one-vs-rest AUCs (NaN when a class is missing).

    Computed class by class: scikit-learn's multi-class form refuses int8 outputs, whose rows do not sum to 1."""
    probabilities = np.asarray(probabilities)
    if not is_multiclass(probabilities):
        return float(metrics.roc_auc_score(labels, probabilities))
    labels = np.asarray(labels).astype(int)
    if any(not 0 < (labels == k).sum() < len(labels) for k in range(probabilities.shape[1])):
        return float("nan")
    return float(np.mean([metrics.roc_auc_score(labels == k, column) for k, column in enumerate(probabilities.T)]))


def accuracy(labels: np.ndarray, probabilities: np.ndarray, threshold: float | None) -> float:
    return float(metrics.accuracy_score(np.asarray(labels).astype(int), decide(probabilities, threshold)))


def classification_scores(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float, confidence: float | None = None
) -> dict[str, float | int]:
    """Accuracy (with its Wilson interval at `confidence`, when given), balanced accuracy, precision, recall, F1,
    ROC AUC and the confusion counts (`multiclass_scores` for more than two classes)."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if is_multiclass(probabilities):
        return multiclass_scores(labels, probabilities, confidence)
    predicted = decide(probabilities, threshold)
    tn, fp, fn, tp = (int(v) for v in metrics.confusion_matrix(labels, predicted, labels=[0, 1]).ravel())
    both_classes = len(np.unique(labels)) == 2
    interval = {}
    if confidence is not None:
        low, high = wilson_interval(tp + tn, len(labels), confidence)
        interval = {"accuracy_ci_low": low, "accuracy_ci_high": high}
    return {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        **interval,
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


def multiclass_scores(
    labels: np.ndarray, probabilities: np.ndarray, confidence: float | None = None
) -> dict[str, float | int]:
    """K > 2 classes, decided by the argmax: accuracy (with its Wilson interval), balanced accuracy, macro F1, macro
    one-vs-rest ROC AUC and each class's precision and recall (`class_<k>_precision`, `class_<k>_recall`)."""
    predicted = decide(probabilities, None)
    classes = list(range(probabilities.shape[1]))
    interval = {}
    if confidence is not None:
        low, high = wilson_interval(int((predicted == labels).sum()), len(labels), confidence)
        interval = {"accuracy_ci_low": low, "accuracy_ci_high": high}
    precision, recall, _, _ = metrics.precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        **interval,
        "balanced_accuracy": float(metrics.balanced_accuracy_score(labels, predicted)),
        "macro_f1": float(metrics.f1_score(labels, predicted, labels=classes, average="macro", zero_division=0)),
        "roc_auc": roc_auc(labels, probabilities),
        **{f"class_{k}_precision": float(precision[k]) for k in classes},
        **{f"class_{k}_recall": float(recall[k]) for k in classes},
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
    reference_correct: np.ndarray, other_correct: np.ndarray, resamples: int, seed: int, confidence: float
) -> dict[str, float]:
    """Accuracy of `other` minus `reference` on the same images, with a paired bootstrap interval at `confidence`.

    Images are resampled with replacement and both models are scored on the same resample, so the
    interval carries the pairing (the models' errors are correlated) that two separate intervals lose.
    """
    reference, other = np.asarray(reference_correct, float), np.asarray(other_correct, float)
    difference = other - reference
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(difference), size=(resamples, len(difference)))
    means = difference[draws].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"difference": float(difference.mean()), "low": float(low), "high": float(high)}


def bootstrap_roc_aucs(labels: np.ndarray, probabilities: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """The ROC AUC on each row of `draws` (image indices drawn with replacement): the Mann-Whitney statistic from
    average ranks, so a tie between a positive and a negative counts one half, as scikit-learn's does. NaN where a
    draw holds one class. For K > 2 classes (N x K probabilities): the macro mean of the one-vs-rest AUCs."""
    probabilities = np.asarray(probabilities)
    if is_multiclass(probabilities):
        labels = np.asarray(labels).astype(int)
        per_class = [bootstrap_roc_aucs(labels == k, column, draws) for k, column in enumerate(probabilities.T)]
        return np.mean(per_class, axis=0)
    labels = np.asarray(labels).astype(bool)[draws]
    ranks = stats.rankdata(np.asarray(probabilities, np.float64)[draws], axis=1)
    positives = labels.sum(axis=1)
    negatives = labels.shape[1] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * labels).sum(axis=1) - positives * (positives + 1) / 2) / (positives * negatives)


def paired_auc_differences(
    labels: np.ndarray,
    reference: np.ndarray,
    others: dict[str, np.ndarray],
    resamples: int,
    seed: int,
    confidence: float,
) -> dict[str, dict[str, float]]:
    """Each of `others`' ROC AUC minus `reference`'s on the same images, with a paired bootstrap interval.

    One set of resamples serves every model, so each difference carries the pairing and every comparison sees
    the same draws."""
    table = bootstrap_auc_table(labels, {"": reference, **others}, resamples, seed)
    return auc_differences(table, "", list(others), confidence)


def bootstrap_auc_table(
    labels: np.ndarray, probabilities: dict[str, np.ndarray], resamples: int, seed: int
) -> dict[str, tuple[float, np.ndarray]]:
    """Per model: its ROC AUC and its AUC on each of `resamples` draws of the images, the draws (seeded by `seed`)
    shared by all, so that any two can be paired later without drawing again."""
    draws = np.random.default_rng(seed).integers(0, len(labels), size=(resamples, len(labels)))
    return {name: (roc_auc(labels, p), bootstrap_roc_aucs(labels, p, draws)) for name, p in probabilities.items()}


def auc_differences(
    table: dict[str, tuple[float, np.ndarray]], reference: str, names: list[str], confidence: float
) -> dict[str, dict[str, float]]:
    """Each of `names`' AUC minus `reference`'s, with the paired interval at `confidence` from `table`'s draws."""
    alpha = (1 - confidence) / 2
    point, base = table[reference]
    result = {}
    for name in names:
        low, high = np.nanquantile(table[name][1] - base, [alpha, 1 - alpha])
        result[name] = {"difference": table[name][0] - point, "low": float(low), "high": float(high)}
    return result
