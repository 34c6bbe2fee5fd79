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

:class:`PackedIsolationForest` does the same for ``IsolationForest.score_samples`` (the outlier
scores): per tree the leaf's depth plus the average path length of its training samples, minus
one, summed in estimator order, then ``-2 ** (-depths / (n_trees * c(max_samples)))``.
"""

from __future__ import annotations

import weakref

import numba
import numpy as np

__all__ = ["PACKED_FOREST_MAX_ROWS", "PackedForest", "PackedIsolationForest", "packed"]

#: Below this many rows the packed kernels are faster than scikit-learn's per-tree calls
#: (measured: 5.8x at 300 rows, 2.4x at 10^3, 0.9x at 10^4; ``benchmarks/bench_lc_classifier.py``).
PACKED_FOREST_MAX_ROWS = 5000


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
        self.roots, self.left, self.right, self.feature, self.threshold, self.missing_left = \
            _flat_nodes(trees)
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


@numba.njit(nogil=True, cache=True, inline="always")
def _leaf(X, i, node, left, right, feature, threshold, missing_left):
    """Leaf reached by row ``i`` of ``X`` from ``node``."""
    while left[node] != -1:
        x = np.float64(X[i, feature[node]])
        if x != x:
            node = left[node] if missing_left[node] else right[node]
        elif x <= threshold[node]:
            node = left[node]
        else:
            node = right[node]
    return node


@numba.njit(nogil=True, cache=True)
def _forest_proba(X, roots, left, right, feature, threshold, missing_left, value):
    n, n_trees, n_classes = X.shape[0], roots.size, value.shape[1]
    out = np.zeros((n, n_classes))
    # tree-major (one tree's nodes stay in cache); each row still sums its trees in order
    for t in range(n_trees):
        for i in range(n):
            node = _leaf(X, i, roots[t], left, right, feature, threshold, missing_left)
            for c in range(n_classes):
                out[i, c] += value[node, c]
    for i in range(n):
        for c in range(n_classes):
            out[i, c] /= n_trees
    return out


@numba.njit(nogil=True, cache=True)
def _forest_leaf_sum(X, roots, left, right, feature, threshold, missing_left, leaf_value):
    n, n_trees = X.shape[0], roots.size
    out = np.zeros(n)
    for t in range(n_trees):
        for i in range(n):
            out[i] += leaf_value[_leaf(X, i, roots[t], left, right, feature, threshold, missing_left)]
    return out


def _flat_nodes(trees, features=None) -> tuple:
    """``roots, left, right, feature, threshold, missing_left`` of trees laid end to end.

    ``features[t]`` maps tree ``t``'s feature indices to columns of ``X`` (bagged feature subsets).
    """
    sizes = np.array([t.node_count for t in trees], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    shift = np.repeat(roots, sizes)
    left = np.concatenate([t.children_left for t in trees]).astype(np.int64)
    right = np.concatenate([t.children_right for t in trees]).astype(np.int64)
    leaf = left == -1
    if features is None:
        feature = np.concatenate([t.feature for t in trees]).astype(np.int64)
    else:  # leaves carry feature -2: keep it, they are never read
        feature = np.concatenate([np.where(t.feature >= 0, np.asarray(f)[np.maximum(t.feature, 0)], t.feature)
                                  for t, f in zip(trees, features)]).astype(np.int64)
    threshold = np.concatenate([t.threshold for t in trees]).astype(np.float64)
    missing = [getattr(t, "missing_go_to_left", None) for t in trees]
    missing_left = np.concatenate(
        [m if m is not None else np.ones(t.node_count, np.uint8) for m, t in zip(missing, trees)]
    ).astype(np.bool_)
    return (roots, np.where(leaf, -1, left + shift), np.where(leaf, -1, right + shift), feature,
            threshold, missing_left)


class PackedIsolationForest:
    """A fitted :class:`~sklearn.ensemble.IsolationForest` as flat arrays.

    Parameters
    ----------
    forest : sklearn.ensemble.IsolationForest
        Fitted (scikit-learn >= 1.4: the per-node depths and path lengths it caches at fit).
    """

    def __init__(self, forest) -> None:
        from sklearn.ensemble._iforest import _average_path_length

        trees = [e.tree_ for e in forest.estimators_]
        subsets = forest.estimators_features_ if forest._max_features != forest.n_features_in_ else None
        self.roots, self.left, self.right, self.feature, self.threshold, self.missing_left = \
            _flat_nodes(trees, subsets)
        # per leaf, exactly as score_samples adds it: depth + average path length - 1.0
        self.leaf_value = np.concatenate([
            np.asarray(depth, dtype=np.float64) + np.asarray(apl, dtype=np.float64) - 1.0
            for depth, apl in zip(forest._decision_path_lengths, forest._average_path_length_per_tree)
        ])
        self.denominator = len(trees) * float(_average_path_length([forest._max_samples])[0])
        self.n_features = int(forest.n_features_in_)

    def score_samples(self, X) -> np.ndarray:
        """As ``forest.score_samples(X)`` (the opposite of the anomaly score; lower = more abnormal)."""
        X32 = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if X32.ndim != 2 or X32.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X32.shape}; the forest expects {self.n_features} features")
        depths = _forest_leaf_sum(X32, self.roots, self.left, self.right, self.feature, self.threshold,
                                  self.missing_left, self.leaf_value)
        if self.denominator == 0:  # a single training sample: scikit-learn takes depths/denominator = 1
            return -np.full_like(depths, 0.5)
        return -(2 ** (-(depths / self.denominator)))


_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def packed(forest) -> PackedForest | PackedIsolationForest:
    """The packed copy of a fitted forest (an isolation forest or a classifier), built once per object."""
    p = _PACKED.get(forest)
    if p is None:
        from sklearn.ensemble import IsolationForest

        kind = PackedIsolationForest if isinstance(forest, IsolationForest) else PackedForest
        p = _PACKED[forest] = kind(forest)
    return p
