"""Classification scores with their uncertainty: accuracy and friends, Wilson intervals, McNemar's test."""
from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion (better than the normal one near 0 or 1 and for small n)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties counted as half."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return float("nan")
    greater = (positives[:, None] > negatives[None, :]).sum()
    equal = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * equal) / (len(positives) * len(negatives)))


def classification_scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float | int | list]:
    """Accuracy (with 95 % Wilson CI), balanced accuracy, precision, recall, F1, ROC AUC and the confusion counts."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    tp = int(((predicted == 1) & (labels == 1)).sum())
    tn = int(((predicted == 0) & (labels == 0)).sum())
    fp = int(((predicted == 1) & (labels == 0)).sum())
    fn = int(((predicted == 0) & (labels == 1)).sum())
    correct, total = tp + tn, len(labels)
    recall = tp / (tp + fn) if tp + fn else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    low, high = wilson_interval(correct, total)
    return {
        "accuracy": correct / total,
        "accuracy_ci95_low": low,
        "accuracy_ci95_high": high,
        "balanced_accuracy": (recall + specificity) / 2,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": roc_auc(labels, np.asarray(probabilities, dtype=np.float64)),
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "true_positives": tp,
        "test_images": total,
    }


def mcnemar_p_value(reference_correct: np.ndarray, other_correct: np.ndarray) -> float:
    """Exact two-sided McNemar test: are two models' error rates on the same images different?"""
    only_reference = int((reference_correct & ~other_correct).sum())
    only_other = int((~reference_correct & other_correct).sum())
    discordant = only_reference + only_other
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, k) for k in range(min(only_reference, only_other) + 1)) / 2 ** discordant
    return min(1.0, 2 * tail)
