"""Integer codes of key columns, ordered like the values: the base of our numpy sorts and joins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd


def key_values(series):
    """Values of a key column without converting extension arrays (e.g. Arrow strings) to objects.

    A numpy or extension array is returned as it is.
    """
    if not isinstance(series, (pd.Series, pd.Index)):
        return series
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


def _direction(ascending: bool | Sequence[bool], n: int) -> list[bool]:
    if isinstance(ascending, (bool, np.bool_)):
        return [bool(ascending)] * n
    ascending = list(ascending)
    if len(ascending) != n:
        raise ValueError(f"ascending has {len(ascending)} entries for {n} keys")
    return ascending


def _length(frame, keys: Sequence[str]) -> int:
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    return len(frame[keys[0]]) if len(keys) else 0


def column_codes(frame: pd.DataFrame | Mapping[str, Any], keys: Sequence[str], ascending: bool | Sequence[bool] = True,
                 nulls: Literal["first", "last"] = "last") -> list[np.ndarray]:
    """:func:`sorted_codes` of each key column, negated where the key sorts descending.

    Nulls go ``first`` or ``last`` whatever the direction, as in ``DataFrame.sort_values``.
    ``frame`` may also be a mapping of column names to arrays (the functions below too).
    """
    out = []
    for key, up in zip(keys, _direction(ascending, len(keys)), strict=True):
        codes, uniques = sorted_codes(key_values(frame[key]), nulls=nulls)
        if not up:
            top = len(uniques) - 1
            codes = np.where((codes >= 0) & (codes <= top), top - codes, codes)
        out.append(codes)
    return out


def sort_order(frame: pd.DataFrame | Mapping[str, Any], keys: Sequence[str], ascending: bool | Sequence[bool] = True,
               nulls: Literal["first", "last"] = "last") -> np.ndarray:
    """Positions that sort ``frame`` by ``keys``: ``frame.sort_values(keys, ascending=...,
    kind="mergesort", na_position=nulls)`` without building the sorted frame (ties keep their order).
    """
    n = _length(frame, keys)
    if not len(keys) or not n:
        return np.arange(n, dtype=np.int64)
    return np.lexsort(column_codes(frame, keys, ascending, nulls)[::-1])


def first_rows(frame: pd.DataFrame | Mapping[str, Any], keys: Sequence[str], by: Sequence[str] = (),
               ascending: bool | Sequence[bool] = True,
               nulls: Literal["first", "last"] = "last") -> np.ndarray:
    """Position of the first row of each distinct ``keys`` tuple once ordered by ``(*keys, *by)``.

    The positions of ``frame.sort_values([*keys, *by], ascending=..., kind="mergesort",
    na_position=nulls).drop_duplicates(keys)``, in that order (ascending by ``keys``; nulls in a
    key equal each other). ``ascending`` has one entry per column of ``keys`` and ``by``, or is one
    bool for all.
    """
    if not _length(frame, keys):
        return np.zeros(0, dtype=np.int64)
    codes = column_codes(frame, [*keys, *by], ascending, nulls)
    order = np.lexsort(codes[::-1])
    return order[run_starts(*(c[order] for c in codes[:len(keys)]))]


def run_starts(*codes: np.ndarray) -> np.ndarray:
    """Positions where a run of equal code tuples starts, in arrays already sorted by the codes."""
    n = len(codes[0])
    if n == 0:
        return np.array([], dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for c in codes:
        change[1:] |= c[1:] != c[:-1]
    return np.flatnonzero(change)
