"""Feature preprocessing of the light-curve classifier (reference 3.3, ``FeaturePreprocessor``).

Columns are selected in the training order, ``±inf`` becomes NaN, NaN becomes ``fill_value``
(-999.0) and values above ``large_value`` (1e32) become ``large_fill`` (0.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = ["FeatureImputer", "impute_features"]


def impute_features(values: np.ndarray, fill_value: float = -999.0, large_value: float = 1e32,
                    large_fill: float = 0.0) -> np.ndarray:
    """ALeRCE's imputation on a 2-D float array (returns a new float64 array).

    ``±inf -> NaN``, then ``NaN -> fill_value``, then ``x > large_value -> large_fill``.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    out[np.isnan(out)] = fill_value
    out[out > large_value] = large_fill
    return out


class FeatureImputer(TransformerMixin, BaseEstimator):
    """Select the training feature columns and impute them like ALeRCE.

    Parameters
    ----------
    exclude : sequence of str
        Feature names dropped before training (ALeRCE's ``non_used_features``).
    fill_value, large_value, large_fill : float
        See :func:`impute_features`.
    on_missing : {"raise", "impute"}
        A training column absent at transform time raises ``ValueError`` (ALeRCE) or is filled
        with ``fill_value``.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        Columns seen in ``fit`` (when fitted on a DataFrame).
    feature_names_out_ : ndarray of str
        Columns kept (``feature_names_in_`` minus ``exclude``), in order.
    n_features_in_ : int
    """

    def __init__(self, exclude: Sequence[str] = (), fill_value: float = -999.0,
                 large_value: float = 1e32, large_fill: float = 0.0, on_missing: str = "raise"):
        self.exclude = exclude
        self.fill_value = fill_value
        self.large_value = large_value
        self.large_fill = large_fill
        self.on_missing = on_missing

    def fit(self, X, y=None):
        """Remember the column order (DataFrame) or the column count (array)."""
        if self.on_missing not in ("raise", "impute"):
            raise ValueError(f"on_missing must be 'raise' or 'impute', got {self.on_missing!r}")
        if isinstance(X, pd.DataFrame):
            names = np.asarray([str(c) for c in X.columns], dtype=object)
        else:
            arr = check_array(X, dtype=np.float64, ensure_all_finite=False)
            names = np.asarray([f"x{i}" for i in range(arr.shape[1])], dtype=object)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = names
        self.n_features_in_ = len(names)
        drop = set(self.exclude)
        self.feature_names_out_ = np.asarray([n for n in names if n not in drop], dtype=object)
        return self

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def transform(self, X) -> np.ndarray:
        """Imputed float64 array with the :attr:`feature_names_out_` columns."""
        check_is_fitted(self, "feature_names_out_")
        if isinstance(X, pd.DataFrame) and hasattr(self, "feature_names_in_"):
            cols = list(self.feature_names_out_)
            present = set(map(str, X.columns))
            missing = [c for c in cols if c not in present]
            if missing and self.on_missing == "raise":
                raise ValueError(f"{len(missing)} feature column(s) missing: {missing[:10]}"
                                 f"{' ...' if len(missing) > 10 else ''}")
            frame = X.rename(columns=str)
            if missing:
                frame = frame.assign(**{c: np.nan for c in missing})
            values = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = check_array(X, dtype=np.float64, ensure_all_finite=False)
            if values.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {values.shape[1]} features, but {type(self).__name__} "
                                 f"is expecting {self.n_features_in_} features as input")
            if hasattr(self, "feature_names_in_"):
                keep = np.isin(self.feature_names_in_, self.feature_names_out_)
                values = values[:, keep]
            elif len(self.exclude):
                names = np.asarray([f"x{i}" for i in range(values.shape[1])])
                values = values[:, ~np.isin(names, list(self.exclude))]
        return impute_features(values, self.fill_value, self.large_value, self.large_fill)
