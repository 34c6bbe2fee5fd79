"""Experimental outlier scores of light-curve features (paper section 3.7 style).

One :class:`~sklearn.ensemble.IsolationForest` per top-level group is fitted on the training
objects of that group (imputed like the classifier). The score of an object under a group's
detector is ``-score_samples`` (higher = more anomalous for that group; roughly 0.35-0.45 for
inliers and above ~0.6 for clear outliers). :func:`score_outliers` writes rows of a ``score``
table: ``(oid, detector_name, detector_version, category, score)`` with ``category`` the group,
one row per object and group.

This is experimental: the detectors are trained on the project's (largely simulated) training
set, so "outlier" means "unlike the training set", not "astrophysically new".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from alerce.classifiers.lc.preprocessing import FeatureImputer

__all__ = ["GroupIsolationForest", "score_outliers", "DETECTOR_NAME", "SCORE_COLUMNS"]

DETECTOR_NAME = "lc_outlier_isolation_forest"
SCORE_COLUMNS = ("oid", "detector_name", "detector_version", "category", "score")


class GroupIsolationForest(BaseEstimator):
    """One isolation forest per group (category).

    Parameters
    ----------
    n_estimators : int
        Trees per isolation forest.
    max_samples : int or float or "auto"
        Passed to :class:`~sklearn.ensemble.IsolationForest`.
    exclude_features : sequence of str
        Features dropped before fitting.
    random_state : int, optional

    Attributes
    ----------
    categories_ : ndarray of str
    detectors_ : dict of str to IsolationForest
    preprocessor_ : FeatureImputer
    """

    def __init__(self, n_estimators: int = 100, max_samples="auto", exclude_features=(),
                 on_missing: str = "raise", random_state: int | None = None):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.exclude_features = exclude_features
        self.on_missing = on_missing
        self.random_state = random_state

    def fit(self, X, groups):
        """Fit one detector on the rows of every group (needs >= 2 rows per group)."""
        groups = np.asarray([str(g) for g in np.asarray(groups, dtype=object).ravel()],
                            dtype=object)
        if len(groups) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but groups has {len(groups)}")
        self.preprocessor_ = FeatureImputer(exclude=tuple(self.exclude_features),
                                            on_missing=self.on_missing).fit(X)
        Xt = self.preprocessor_.transform(X)
        self.detectors_ = {}
        for k, g in enumerate(sorted(set(groups))):
            rows = Xt[groups == g]
            if len(rows) < 2:
                continue
            seed = None if self.random_state is None else int(self.random_state) + k
            self.detectors_[g] = IsolationForest(n_estimators=self.n_estimators,
                                                 max_samples=self.max_samples,
                                                 random_state=seed).fit(rows)
        self.categories_ = np.asarray(sorted(self.detectors_), dtype=object)
        return self

    def score(self, X) -> pd.DataFrame:  # noqa: D401 - not sklearn's score
        """Anomaly score (``-score_samples``) of every row under every group's detector.

        Returns
        -------
        pandas.DataFrame
            Index like ``X`` (or 0..n-1), one column per category.
        """
        check_is_fitted(self, "detectors_")
        Xt = self.preprocessor_.transform(X)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(Xt.shape[0])
        return pd.DataFrame({g: -_score_samples(self.detectors_[g], Xt) for g in self.categories_},
                            index=index)


def _score_samples(forest: IsolationForest, X: np.ndarray) -> np.ndarray:
    """``forest.score_samples(X)``: the packed numba copy for pipeline-sized batches (same values).

    scikit-learn walks its trees one Python call each (~15 ms per detector whatever the rows).
    """
    from alerce.classifiers.lc.fastforest import PACKED_FOREST_MAX_ROWS, packed

    if len(X) <= PACKED_FOREST_MAX_ROWS and hasattr(forest, "_decision_path_lengths"):
        return packed(forest).score_samples(X)
    return forest.score_samples(X)


def score_outliers(features: pd.DataFrame, model=None) -> pd.DataFrame:
    """Rows of the ``score`` table for every object of ``features`` (experimental).

    Parameters
    ----------
    features : pandas.DataFrame
        Features indexed by oid (as from :func:`alerce.features.extract_features`).
    model : Bundle, GroupIsolationForest or None
        A loaded bundle (its ``outliers`` object and card version), a detector, or None for the
        default bundle (:func:`alerce.classifiers.lc.load_default_model`).

    Returns
    -------
    pandas.DataFrame
        ``oid, detector_name, detector_version, category, score``; empty (same columns) for an
        empty input.
    """
    from alerce.classifiers.bundle import Bundle

    version = "unversioned"
    if model is None:
        from alerce.classifiers.lc.pipeline import load_default_model

        model = load_default_model()
    if isinstance(model, Bundle):
        version = str(model.card.get("version", version))
        detector = model.objects.get("outliers")
        if detector is None:
            raise ValueError(f"bundle {model.path} has no outlier detector")
    else:
        detector = model
    if len(features) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "score" else object)
                             for c in SCORE_COLUMNS})
    scores = detector.score(features)
    n, k = scores.shape
    return pd.DataFrame({
        "oid": np.repeat(np.asarray(scores.index, dtype=object), k),
        "detector_name": DETECTOR_NAME,
        "detector_version": version,
        "category": np.tile(np.asarray(scores.columns, dtype=object), n),
        "score": scores.to_numpy().ravel(),
    })
