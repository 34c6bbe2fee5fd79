"""Helpers that turn lists of Python values into typed pandas columns (no per-row pandas work).

Column kinds: ``"f"`` float64 (None -> NaN), ``"i"`` int64 (falls back to nullable ``Int64`` when a
value is missing), ``"I"`` nullable ``Int64``, ``"s"`` pandas string dtype (None -> missing),
``"b"`` bool, ``"o"`` object (bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

_TRUE_DIFFPOS = ("t", "1", "T", "true", "True")


def to_column(values: Sequence[Any], kind: str) -> Any:
    """Convert a list of Python values to an array of the given kind (see module docstring)."""
    if kind == "f":
        try:
            return np.array(values, dtype=np.float64)
        except (TypeError, ValueError):
            return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    if kind == "i":
        try:
            return np.array(values, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            return pd.array(values, dtype="Int64")
    if kind == "I":
        return pd.array(values, dtype="Int64")
    if kind == "s":
        return pd.array(values, dtype="str")
    if kind == "b":
        return np.array(values, dtype=bool)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def isdiffpos_sign(values: Sequence[Any]) -> np.ndarray:
    """Map ZTF ``isdiffpos`` ('t'/'1' -> +1, anything else -> -1) to int8."""
    arr = np.asarray(values, dtype=object)
    return np.where(np.isin(arr, _TRUE_DIFFPOS), 1, -1).astype(np.int8)


def pluck(rows: Sequence[Mapping[str, Any]], key: str) -> list:
    """``[row.get(key) for row in rows]`` (missing keys give None)."""
    return [r.get(key) for r in rows]


def frame(columns: Mapping[str, Any], order: Iterable[str], length: int) -> pd.DataFrame:
    """Build a DataFrame with exactly the columns of ``order`` (absent ones are NaN)."""
    data = {}
    for name in order:
        col = columns.get(name)
        data[name] = np.full(length, np.nan) if col is None else col
    return pd.DataFrame(data, copy=False)


def empty_like_kinds(kinds: Mapping[str, str], order: Iterable[str]) -> pd.DataFrame:
    """An empty frame with the dtypes the kinds would give."""
    return frame({c: to_column([], kinds.get(c, "f")) for c in order}, order, 0)
