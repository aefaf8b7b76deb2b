"""Sparsity-preserving weight clustering with tfmot."""

from __future__ import annotations

import tensorflow_model_optimization as tfmot
import tf_keras as keras

from stages.lib.pruning import clone_wrapping


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
