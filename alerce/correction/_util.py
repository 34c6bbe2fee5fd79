"""Small shared helpers: column checks, sign normalization and first/last row per group."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from alerce.codes import column_codes, run_starts


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise a ``ValueError`` naming the missing columns of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        Frame to check.
    columns : iterable of str
        Columns that must be present.
    what : str
        Name of the frame in the error message (e.g. ``"detections"``).
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame is missing required column(s) {missing}; it has {list(frame.columns)}")


def isdiffpos_sign(values: pd.Series | np.ndarray) -> np.ndarray:
    """Map ``isdiffpos`` to an int8 array of +1 / -1.

    Numbers are mapped by their sign (``> 0`` -> +1, anything else, NaN included, -> -1). Strings follow
    ALeRCE's mapping ``{'t': 1, '1': 1, 'f': -1, '0': -1}`` (any other string or null -> -1).
    """
    s = pd.Series(values, copy=False)
    if pd.api.types.is_bool_dtype(s.dtype):
        return np.where(s.to_numpy(dtype=bool, na_value=False), 1, -1).astype(np.int8)
    if pd.api.types.is_numeric_dtype(s.dtype):
        arr = s.to_numpy(dtype="float64", na_value=np.nan)
        return np.where(arr > 0, 1, -1).astype(np.int8)
    text = s.astype("string").str.strip().str.lower()
    return np.where(text.isin(["t", "1", "true"]).to_numpy(dtype=bool, na_value=False), 1, -1).astype(np.int8)


def as_float(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column as a float64 numpy array (nulls -> NaN); all NaN when the column is absent."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    series = frame[column]
    if series.dtype == np.float64:
        return series.to_numpy()  # a read-only view under copy-on-write
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def first_of_group(frame: pd.DataFrame, group_keys: Sequence[str], order_keys: Sequence[str]) -> np.ndarray:
    """For every row, the position (in ``frame``) of the first row of its group.

    Groups are the distinct values of ``group_keys``; "first" is the smallest ``order_keys`` tuple
    (nulls last, ties broken by the remaining keys' natural order, then by position so the result is
    deterministic).

    Parameters
    ----------
    frame : DataFrame
        Any index; only the listed columns are read.
    group_keys, order_keys : sequence of str
        Grouping columns and ordering columns.

    Returns
    -------
    ndarray of int64, length ``len(frame)``
    """
    n = len(frame)
    if n == 0:
        return np.array([], dtype=np.int64)
    cols = list(dict.fromkeys([*group_keys, *order_keys]))
    codes = column_codes(frame, cols)
    order = np.lexsort(codes[::-1])
    first = run_starts(*(c[order] for c in codes[:len(group_keys)]))
    sizes = np.diff(np.r_[first, n])
    out = np.empty(n, dtype=np.int64)
    out[order] = np.repeat(order[first], sizes)
    return out


def group_stats(values: np.ndarray, starts: np.ndarray, gid: np.ndarray) -> dict[str, np.ndarray]:
    """``mean, median, max, min, std`` (ddof=1) of each run of ``values``, skipping NaN.

    ``values`` is ordered by group: group ``g`` holds ``values[starts[g]:starts[g + 1]]`` and
    ``gid`` is each row's group. A group without a non-NaN value gives NaN (``std``: fewer than two).
    """
    if len(starts) == 0:
        return {name: np.array([]) for name in ("mean", "median", "max", "min", "std")}
    valid = ~np.isnan(values)
    count = np.add.reduceat(valid.astype(np.int64), starts)
    total = np.add.reduceat(np.where(valid, values, 0.0), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        dev = np.where(valid, values - mean[gid], 0.0)
        var = np.add.reduceat(dev * dev, starts) / (count - 1)
    std = np.where(count > 1, np.sqrt(np.maximum(var, 0.0)), np.nan)
    # median: NaN sorts last within each group, so the valid values lead each group's run
    ranked = values[np.lexsort((values, gid))]
    lo = starts + np.maximum(count - 1, 0) // 2
    hi = starts + count // 2
    median = np.where(count > 0, 0.5 * (ranked[lo] + ranked[hi]), np.nan)
    return {
        "mean": mean,
        "median": median,
        "max": np.fmax.reduceat(values, starts),
        "min": np.fmin.reduceat(values, starts),
        "std": std,
    }
