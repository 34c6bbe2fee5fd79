"""ALeRCE's hierarchical balanced random-forest light-curve classifier.

Public API
----------
:class:`HierarchicalRandomForest`
    scikit-learn meta-estimator (top + three child balanced random forests).
:func:`classify_features`
    Probability-table rows from a feature frame.
:func:`load_default_model`
    The shipped bundle (cached per process).
:func:`train_lc_classifier`, :func:`main`, :func:`evaluate_main`
    Training and evaluation (also ``alerce train lc`` / ``alerce evaluate``).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "HierarchicalRandomForest": "alerce.classifiers.lc.model",
    "ALERCE_EXCLUDED_FEATURES": "alerce.classifiers.lc.model",
    "FeatureImputer": "alerce.classifiers.lc.preprocessing",
    "impute_features": "alerce.classifiers.lc.preprocessing",
    "classify_features": "alerce.classifiers.lc.pipeline",
    "probability_rows": "alerce.classifiers.lc.pipeline",
    "load_default_model": "alerce.classifiers.lc.pipeline",
    "DEFAULT_MODEL_DIR": "alerce.classifiers.lc.pipeline",
    "score_outliers": "alerce.classifiers.outliers",
    "train_lc_classifier": "alerce.classifiers.lc.train",
    "main": "alerce.classifiers.lc.train",
    "evaluate_main": "alerce.classifiers.lc.evaluate",
    "evaluate_model": "alerce.classifiers.lc.evaluate",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alerce.classifiers.lc' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
