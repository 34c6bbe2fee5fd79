"""Pipeline entry points: probability-table rows and the default model (reference 3.5)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from alerce.classifiers.bundle import Bundle, load_bundle
from alerce.classifiers.lc.model import HierarchicalRandomForest
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY

__all__ = ["classify_features", "probability_rows", "load_default_model", "DEFAULT_MODEL_DIR",
           "PROBABILITY_COLUMNS", "resolve_model"]

#: Folder of the shipped default bundle.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "lc_classifier"
PROBABILITY_COLUMNS = ("oid", "class_name", "classifier_name", "classifier_version",
                       "probability", "ranking")
BUILD_COMMAND = "alerce train lc --out alerce/models/lc_classifier"


@functools.lru_cache(maxsize=1)
def load_default_model() -> Bundle:
    """The shipped bundle (loaded once per process).

    Raises
    ------
    FileNotFoundError
        If the bundle was not built, with the command that builds it.
    """
    if not (DEFAULT_MODEL_DIR / "model_card.json").is_file():
        raise FileNotFoundError(f"no default light-curve classifier at {DEFAULT_MODEL_DIR}; "
                                f"build it with `{BUILD_COMMAND}` (or "
                                "`python -m alerce.classifiers.lc.train --out ...`)")
    return load_bundle(DEFAULT_MODEL_DIR)


def resolve_model(model=None) -> tuple[HierarchicalRandomForest, str, str]:
    """``(estimator, classifier_name, classifier_version)`` from a bundle, path, estimator or None."""
    if model is None:
        model = load_default_model()
    if isinstance(model, (str, Path)):
        model = load_bundle(model)
    if isinstance(model, Bundle):
        est = model.objects["classifier"]
        name = str(model.card.get("name", "lc_classifier"))
        version = str(model.card.get("version", "unversioned"))
        return est, name, version
    if isinstance(model, HierarchicalRandomForest):
        tax = model.taxonomy or DEFAULT_TAXONOMY
        return model, tax.name, tax.version
    raise TypeError(f"model must be a Bundle, a bundle path, a HierarchicalRandomForest or None, "
                    f"got {type(model).__name__}")


def probability_rows(proba: pd.DataFrame, classifier_name: str,
                     classifier_version: str) -> pd.DataFrame:
    """Long probability rows of a wide (oid x class) frame, with dense ranking per oid.

    ``ranking`` is the dense rank of ``-probability`` within the row (1 = most probable; ties
    share a rank).
    """
    values = proba.to_numpy(dtype=np.float64)
    n, k = values.shape
    ranks = proba.rank(axis=1, method="dense", ascending=False).to_numpy()
    return pd.DataFrame({
        "oid": np.repeat(np.asarray(proba.index, dtype=object), k),
        "class_name": np.tile(np.asarray(proba.columns, dtype=object), n),
        "classifier_name": classifier_name,
        "classifier_version": classifier_version,
        "probability": values.ravel(),
        "ranking": ranks.ravel().astype(np.int64),
    })


def classify_features(features: pd.DataFrame, model=None) -> pd.DataFrame:
    """Probability-table rows of every object of ``features``.

    Parameters
    ----------
    features : pandas.DataFrame
        Features indexed by oid (``alerce.features.extract_features`` output). Columns the model
        was not trained on are ignored; a missing training column raises ``ValueError`` unless
        the model was built with ``on_missing="impute"``.
    model : Bundle, str, Path, HierarchicalRandomForest or None
        Default: :func:`load_default_model`.

    Returns
    -------
    pandas.DataFrame
        ``oid, class_name, classifier_name, classifier_version, probability, ranking`` for
        ``lc_classifier`` (final classes), ``lc_classifier_top`` and
        ``lc_classifier_<group>`` (lower-case group name).
    """
    if len(features) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in PROBABILITY_COLUMNS}).astype(
            {"probability": float, "ranking": np.int64})
    est, name, version = resolve_model(model)
    if features.index.name != "oid" and "oid" in features.columns:
        features = features.set_index("oid")
    h = est.predict_proba_hierarchical(features)
    parts = [probability_rows(h["probabilities"], name, version),
             probability_rows(h["top"], f"{name}_top", version)]
    parts += [probability_rows(df, f"{name}_{g.lower()}", version)
              for g, df in h["children"].items()]
    return pd.concat(parts, ignore_index=True)
