"""A classifier's per-image outputs as the probabilities every score reads."""

from __future__ import annotations

import numpy as np


def probability_rows(rows: list[np.ndarray]) -> np.ndarray:
    """One output row per image as float32 probabilities: P(class 1) per image (a vector) for a one-unit sigmoid
    head, every class's probability (N x K) for a softmax over K classes."""
    if not rows:
        return np.empty(0, dtype=np.float32)
    stacked = np.stack([np.asarray(row, dtype=np.float32).reshape(-1) for row in rows])
    return np.ascontiguousarray(stacked[:, 0]) if stacked.shape[1] == 1 else stacked
