"""Integer codes of key columns, ordered like the values: the base of our numpy sorts and joins."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd


def key_values(series: pd.Series):
    """Values of a key column without converting extension arrays (e.g. Arrow strings) to objects."""
    if isinstance(series.dtype, pd.api.extensions.ExtensionDtype):
        return series.array
    return series.to_numpy()


def sorted_codes(values, nulls: Literal["first", "last"] = "last") -> tuple[np.ndarray, Any]:
    """Integer codes ordered like the distinct values they stand for.

    Parameters
    ----------
    values : array-like
        A numpy array or a pandas extension array (Arrow strings stay Arrow).
    nulls : {"first", "last"}
        Where nulls sort: code -1 or ``len(uniques)``.

    Returns
    -------
    codes : ndarray of int64
        ``codes[i] < codes[j]`` exactly when ``values[i]`` sorts before ``values[j]``.
    uniques : array
        The distinct non-null values, sorted (``uniques[codes[i]]`` is ``values[i]``).

    Notes
    -----
    Factorizes in order of appearance and sorts only the distinct values: for a key column with
    few distinct values (object ids of a batch) that is ~2x faster than ``factorize(sort=True)``.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    order = np.asarray(uniques.argsort())
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    null = -1 if nulls == "first" else len(order)
    codes = np.where(codes < 0, null, rank[np.maximum(codes, 0)] if len(order) else null)
    return codes.astype(np.int64, copy=False), uniques.take(order)
