"""Sparsity-preserving weight clustering with tfmot, and per-output-channel clustering for look-up tables."""

from __future__ import annotations

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras as keras

from stages.lib.compress.pruning import clone_wrapping, large_enough


def cluster(model: keras.Model, clusters: int, min_weights: int) -> keras.Model:
    """Sparsity-preserving weight clustering of the Conv2D and Dense layers that were pruned.

    KMEANS++ centroid initialisation fails on layers with fewer non-zero weights than clusters, which is one more
    reason `min_weights` keeps the small layers out.
    """
    centroids = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS
    return clone_wrapping(
        model,
        lambda layer: tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=clusters, cluster_centroids_init=centroids, preserve_sparsity=True
        ),
        min_weights,
    )


def strip(model: keras.Model) -> keras.Model:
    return tfmot.clustering.keras.strip_clustering(model)


def cluster_channels(model: keras.Model, clusters: int, min_weights: int) -> int:
    """Cluster, in place, every output channel of each Conv2D and Dense kernel of `min_weights` weights or more to
    `clusters` values (its own k-means); return how many kernels changed.

    Per-channel int8 quantization then leaves at most `clusters` int8 values per channel: TFLite Micro's per-channel
    look-up table (`lut`). tfmot's `cluster_per_channel` skips every Conv2D without a bias (all of Lite0's)."""
    changed = 0
    for layer in model.layers:
        if not large_enough(layer, min_weights):
            continue
        kernel = layer.kernel.numpy()
        channels = kernel.reshape(-1, kernel.shape[-1]).T  # Conv2D (h, w, in, out) and Dense (in, out): out last
        if max(len(np.unique(row)) for row in channels) <= clusters:
            continue
        layer.kernel.assign(kmeans_rows(channels, clusters).T.reshape(kernel.shape))
        changed += 1
    return changed


def kmeans_rows(values: np.ndarray, clusters: int) -> np.ndarray:
    """Each row of `values` with every value replaced by the nearest of the row's own `clusters` centroids.

    Lloyd's algorithm on every row at once, from the rows' quantiles (deterministic), until no value changes
    cluster: one k-means per output channel is thousands per model, which one library call per channel makes
    minutes."""
    centroids = np.quantile(values, (np.arange(clusters) + 0.5) / clusters, axis=1).T  # (rows, clusters)
    nearest = None
    while True:
        assigned = np.abs(values[:, :, None] - centroids[:, None, :]).argmin(axis=2)
        if nearest is not None and np.array_equal(assigned, nearest):
            break
        nearest = assigned
        members = nearest[:, :, None] == np.arange(clusters)
        counts = members.sum(axis=1)
        sums = np.einsum("rv,rvk->rk", values, members)
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    return np.take_along_axis(centroids, nearest, axis=1).astype(values.dtype)
