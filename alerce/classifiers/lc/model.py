"""Hierarchical balanced random forest (reference 3.2-3.4).

A top :class:`~imblearn.ensemble.BalancedRandomForestClassifier` separates the taxonomy's groups
(``Stochastic``, ``Periodic``, ``Transient``); one child forest per group separates that group's
classes. ``P(c) = P_top(group(c)) * P_group(c)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from imblearn.ensemble import BalancedRandomForestClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from alerce.classifiers.lc.preprocessing import FeatureImputer
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY, Taxonomy

__all__ = ["HierarchicalRandomForest", "ALERCE_EXCLUDED_FEATURES"]

#: Features ALeRCE's training script drops (``non_used_features``, reference 2.3).
ALERCE_EXCLUDED_FEATURES: tuple[str, ...] = ("Mean_1", "Mean_2")


def _predict_forest(forest, X) -> np.ndarray:
    """``forest.predict_proba(X)``, evaluated by the packed numba kernel for pipeline-sized batches.

    Same values bit for bit (:mod:`alerce.classifiers.lc.fastforest`), without the per-tree Python
    dispatch that costs ~30 ms per 300-tree forest and call.
    """
    from alerce.classifiers.lc.fastforest import PACKED_FOREST_MAX_ROWS, packed

    if len(X) > PACKED_FOREST_MAX_ROWS:
        return forest.predict_proba(X)
    try:
        p = packed(forest)
    except (AttributeError, TypeError, ValueError):  # not a plain fitted tree ensemble
        return forest.predict_proba(X)
    return p.predict_proba(X)


class HierarchicalRandomForest(ClassifierMixin, BaseEstimator):
    """ALeRCE's hierarchical balanced random forest as a scikit-learn classifier.

    Parameters
    ----------
    taxonomy : Taxonomy, optional
        Class hierarchy; default :data:`~alerce.classifiers.taxonomy.DEFAULT_TAXONOMY`.
    n_estimators : int
        Trees per forest (ALeRCE: 500 for all four).
    max_depth : int, optional
        Tree depth (ALeRCE: None).
    max_features_top, max_features_stochastic, max_features_periodic, max_features_transient
        ``max_features`` of each forest (ALeRCE: ``sqrt``, ``0.2``, ``sqrt``, ``sqrt``).
        Groups of a non-default taxonomy use ``max_features_top``.
    exclude_features : sequence of str
        Feature names dropped before training (ALeRCE drops ``Mean_1``, ``Mean_2``).
    fill_value : float
        Imputation value of NaN/inf (reference 3.3).
    on_missing : {"raise", "impute"}
        What to do with a training feature absent at prediction time.
    sampling_strategy, replacement, bootstrap
        Passed to every ``BalancedRandomForestClassifier`` (imblearn 0.7 behaviour:
        ``'auto'``, False, True).
    n_jobs : int, optional
        Parallel jobs of each forest.
    random_state : int, optional
        Seed; the four forests get ``random_state + k``.

    Attributes
    ----------
    classes_ : ndarray
        Final classes: groups in taxonomy order, alphabetical inside a group (reference 3.4),
        with the type of the training labels (``str`` for class names).
    class_names_ : ndarray of str
        ``classes_`` as taxonomy names (columns of :meth:`predict_proba_hierarchical`).
    groups_ : ndarray of str
        Top-level classes (the top forest's ``classes_``, alphabetical).
    top_ : BalancedRandomForestClassifier
    children_ : dict of str to BalancedRandomForestClassifier
    preprocessor_ : FeatureImputer
    feature_names_in_ : ndarray of str
        Feature columns seen in ``fit`` (DataFrame input).
    n_features_in_ : int
    """

    def __init__(self, taxonomy: Taxonomy | None = None, n_estimators: int = 500,
                 max_depth: int | None = None, max_features_top="sqrt",
                 max_features_stochastic=0.2, max_features_periodic="sqrt",
                 max_features_transient="sqrt",
                 exclude_features: Sequence[str] = ALERCE_EXCLUDED_FEATURES,
                 fill_value: float = -999.0, on_missing: str = "raise",
                 sampling_strategy="auto", replacement: bool = False, bootstrap: bool = True,
                 n_jobs: int | None = None, random_state: int | None = None):
        self.taxonomy = taxonomy
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.max_features_top = max_features_top
        self.max_features_stochastic = max_features_stochastic
        self.max_features_periodic = max_features_periodic
        self.max_features_transient = max_features_transient
        self.exclude_features = exclude_features
        self.fill_value = fill_value
        self.on_missing = on_missing
        self.sampling_strategy = sampling_strategy
        self.replacement = replacement
        self.bootstrap = bootstrap
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ------------------------------------------------------------------ helpers
    def _taxonomy(self) -> Taxonomy:
        return DEFAULT_TAXONOMY if self.taxonomy is None else self.taxonomy

    def _forest(self, max_features, k: int) -> BalancedRandomForestClassifier:
        seed = None if self.random_state is None else int(self.random_state) + k
        return BalancedRandomForestClassifier(
            n_estimators=self.n_estimators, max_depth=self.max_depth, max_features=max_features,
            sampling_strategy=self.sampling_strategy, replacement=self.replacement,
            bootstrap=self.bootstrap, n_jobs=self.n_jobs, random_state=seed)

    def _max_features(self, group: str):
        return {"Stochastic": self.max_features_stochastic,
                "Periodic": self.max_features_periodic,
                "Transient": self.max_features_transient}.get(group, self.max_features_top)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the top forest on all rows and each child on its group's rows.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Features (NaN allowed; imputed with ``fill_value``). Rows of a DataFrame with a
            repeated index (oid) are dropped after the first, like ALeRCE.
        y : array-like of str
            Leaf class of every row (must be in the taxonomy).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            On unknown labels, length mismatch or fewer than two top-level groups.
        """
        tax = self._taxonomy()
        y_in = column_or_1d(y, warn=True)
        target = type_of_target(y_in)
        if target not in ("binary", "multiclass"):
            raise ValueError(f"Unknown label type: {target!r}; expected class names")
        y = np.asarray([str(v) for v in y_in], dtype=object)
        original = dict(zip(y, y_in))
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, dtype=np.float64, ensure_all_finite=False, ensure_min_samples=2)
        n = X.shape[0]
        if len(y) != n:
            raise ValueError(f"X has {n} rows but y has {len(y)} labels")
        if isinstance(X, pd.DataFrame) and X.index.has_duplicates:
            # reference 3.3 step 4: duplicate oids are dropped when training (keep the first)
            keep = ~X.index.duplicated(keep="first")
            X, y = X[keep], y[keep]
        groups = np.asarray(tax.map_groups(y), dtype=object)
        if len(set(groups)) < 2:
            raise ValueError(f"training data needs at least two top-level groups, got "
                             f"{sorted(set(groups))}")
        self.preprocessor_ = FeatureImputer(exclude=tuple(self.exclude_features),
                                            fill_value=self.fill_value,
                                            on_missing=self.on_missing).fit(X)
        if hasattr(self.preprocessor_, "feature_names_in_"):
            self.feature_names_in_ = self.preprocessor_.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = self.preprocessor_.n_features_in_
        Xt = self.preprocessor_.transform(X)
        self.top_ = self._forest(self.max_features_top, 0).fit(Xt, groups)
        self.groups_ = self.top_.classes_.astype(object)
        self.children_ = {}
        self.child_classes_ = {}
        for k, group in enumerate(tax.group_names, start=1):
            mask = groups == group
            if not mask.any():
                continue
            present = np.unique(y[mask])
            if len(present) == 1:
                self.children_[group] = None
                self.child_classes_[group] = present.astype(object)
            else:
                child = self._forest(self._max_features(group), k).fit(Xt[mask], y[mask])
                self.children_[group] = child
                self.child_classes_[group] = child.classes_.astype(object)
        names = [c for g in tax.group_names if g in self.child_classes_
                 for c in self.child_classes_[g]]
        self.class_names_ = np.asarray(names, dtype=object)
        self.classes_ = np.asarray([original[c] for c in names])
        if self.classes_.dtype.kind in "USO":
            self.classes_ = self.classes_.astype(object)
        return self

    def compact(self) -> HierarchicalRandomForest:
        """A copy without the forests' per-tree samplers and pipelines (``samplers_``,
        ``pipelines_``).

        Predictions only use the trees (``estimators_``); dropping the rest makes a bundle about
        three times smaller and faster to load. The copy gives identical probabilities.
        """
        import copy

        check_is_fitted(self, "top_")
        out = copy.copy(self)

        def strip(forest):
            if forest is None:
                return None
            f = copy.copy(forest)
            for attr in ("samplers_", "pipelines_"):
                if hasattr(f, attr):
                    delattr(f, attr)
            return f

        out.top_ = strip(self.top_)
        out.children_ = {g: strip(f) for g, f in self.children_.items()}
        return out

    # ------------------------------------------------------------------ predict
    def _index(self, X) -> pd.Index:
        if isinstance(X, pd.DataFrame):
            return X.index
        return pd.RangeIndex(np.asarray(X).shape[0])

    def _hierarchical_arrays(self, X) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        check_is_fitted(self, "top_")
        Xt = self.preprocessor_.transform(X)
        top = _predict_forest(self.top_, Xt)
        children = {}
        for group, child in self.children_.items():
            if child is None:
                children[group] = np.ones((Xt.shape[0], 1))
            else:
                children[group] = _predict_forest(child, Xt)
        return top, children

    def predict_proba(self, X) -> np.ndarray:
        """Final class probabilities ``P_top(group) * P_group(class)``, columns like ``classes_``."""
        top, children = self._hierarchical_arrays(X)
        parts = []
        for group in self._taxonomy().group_names:
            if group not in children:
                continue
            j = int(np.flatnonzero(self.groups_ == group)[0])
            parts.append(top[:, [j]] * children[group])
        return np.hstack(parts)

    def predict(self, X) -> np.ndarray:
        """Most probable final class of every row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_hierarchical(self, X) -> dict:
        """Top-level and per-group probabilities (ALeRCE's ``predict_in_pipeline`` layout).

        Returns
        -------
        dict
            ``{"top": DataFrame[groups_], "children": {group: DataFrame[group classes]},
            "probabilities": DataFrame[classes_], "class": Series}``, indexed like ``X``
            (DataFrame input) or 0..n-1.
        """
        top, children = self._hierarchical_arrays(X)
        index = self._index(X)
        out_children = {g: pd.DataFrame(children[g], index=index,
                                        columns=list(self.child_classes_[g]))
                        for g in self._taxonomy().group_names if g in children}
        top_df = pd.DataFrame(top, index=index, columns=list(self.groups_))
        parts = [top_df[[g]].to_numpy() * out_children[g].to_numpy() for g in out_children]
        proba = pd.DataFrame(np.hstack(parts), index=index, columns=list(self.class_names_))
        return {"top": top_df, "children": out_children, "probabilities": proba,
                "class": proba.idxmax(axis=1)}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
