"""Fitted scikit-learn forests packed into flat arrays and evaluated by one numba kernel.

``ForestClassifier.predict_proba`` walks its trees one Python call at a time (input checks and a
joblib dispatch per tree): for the 4 x 300 trees of the hierarchical model that is ~0.2 s per
call whatever the number of rows, which dominates the classifier step of small pipeline batches.
:class:`PackedForest` copies every tree's nodes into contiguous arrays once and evaluates all
trees for all rows in one compiled loop.

The result equals scikit-learn's bit for bit: rows are cast to float32 as the trees do, a row
goes left when ``x <= threshold`` (missing values follow ``missing_go_to_left``), each tree's
leaf counts are normalized as ``DecisionTreeClassifier.predict_proba`` does, tree probabilities
are summed in estimator order and divided by the number of trees at the end.
"""

from __future__ import annotations

import weakref

import numba
import numpy as np

__all__ = ["PackedForest", "packed"]


class PackedForest:
    """The trees of one fitted single-output forest classifier as flat arrays.

    Parameters
    ----------
    forest : sklearn.ensemble.RandomForestClassifier or compatible
        Fitted; every ``estimators_`` item a ``DecisionTreeClassifier`` with one output.
    """

    def __init__(self, forest) -> None:
        trees = [e.tree_ for e in forest.estimators_]
        if not trees or any(t.n_outputs != 1 for t in trees):
            raise ValueError("PackedForest needs a fitted single-output forest")
        n_classes = len(forest.classes_)
        sizes = np.array([t.node_count for t in trees], dtype=np.int64)
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        shift = np.repeat(self.roots, sizes)
        left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
        right = np.concatenate([t.children_right for t in trees]).astype(np.int64)
        leaf = left == -1
        self.left = np.where(leaf, -1, left + shift)
        self.right = np.where(leaf, -1, right + shift)
        self.feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
        self.threshold = np.concatenate([t.threshold for t in trees]).astype(np.float64)
        missing = [getattr(t, "missing_go_to_left", None) for t in trees]
        self.missing_left = np.concatenate(
            [m if m is not None else np.ones(t.node_count, np.uint8) for m, t in zip(missing, trees)]
        ).astype(np.bool_)
        value = np.concatenate([t.value[:, 0, :n_classes] for t in trees]).astype(np.float64)
        norm = value.sum(axis=1, keepdims=True)
        norm[norm == 0.0] = 1.0
        self.value = value / norm
        self.n_features = int(forest.n_features_in_)
        self.classes_ = forest.classes_

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, as ``forest.predict_proba(X)``."""
        X32 = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X32.ndim != 2 or X32.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X32.shape}; the forest expects {self.n_features} features")
        return _forest_proba(X32, self.roots, self.left, self.right, self.feature, self.threshold,
                             self.missing_left, self.value)


@numba.njit(nogil=True, cache=True)
def _forest_proba(X, roots, left, right, feature, threshold, missing_left, value):
    n, n_trees, n_classes = X.shape[0], roots.size, value.shape[1]
    out = np.zeros((n, n_classes))
    # tree-major (one tree's nodes stay in cache); each row still sums its trees in order
    for t in range(n_trees):
        for i in range(n):
            node = roots[t]
            while left[node] != -1:
                x = np.float64(X[i, feature[node]])
                if x != x:
                    node = left[node] if missing_left[node] else right[node]
                elif x <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            for c in range(n_classes):
                out[i, c] += value[node, c]
    for i in range(n):
        for c in range(n_classes):
            out[i, c] /= n_trees
    return out


_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def packed(forest) -> PackedForest:
    """The :class:`PackedForest` of a fitted forest, built once per forest object."""
    p = _PACKED.get(forest)
    if p is None:
        p = _PACKED[forest] = PackedForest(forest)
    return p
