"""Conversions between pandas frames and SQL rows (column by column, vectorized).

Writing: every value becomes a plain Python object the DB-API drivers accept (``float``, ``int``,
``bool``, ``str``, ``datetime`` or ``None``). ``NaN``, ``NaT``, ``None`` and ``pd.NA`` become SQL NULL;
numpy scalars are unwrapped; JSON columns are serialized with :func:`json.dumps`.

Reading: each column gets the dtype of its SQL type: DOUBLE -> float64 (NULL -> NaN), integers ->
int64 (``Int64`` when NULLs are present; ``parent_candid`` is always ``Int64``), booleans -> bool
(``boolean`` when NULLs are present), TEXT -> pandas' string dtype, JSON -> Python objects,
timestamps -> datetime64.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from alerce.codes import key_values, sorted_codes

#: Integer columns read back as nullable ``Int64`` even when no NULL is present.
ALWAYS_NULLABLE_INT: frozenset[str] = frozenset({"parent_candid"})


class StoreDataError(ValueError):
    """A frame holds a value that cannot be stored in its column (names table, column and row)."""


def kind(coltype: sa.types.TypeEngine) -> str:
    """Coarse kind of a SQL type: ``float``, ``int``, ``bool``, ``text``, ``json`` or ``datetime``."""
    if isinstance(coltype, sa.JSON):
        return "json"
    if isinstance(coltype, sa.Boolean):
        return "bool"
    if isinstance(coltype, sa.Integer):
        return "int"
    if isinstance(coltype, sa.Float):
        return "float"
    if isinstance(coltype, sa.DateTime):
        return "datetime"
    return "text"


def _bad(table: str, column: str, series: pd.Series, mask: np.ndarray, what: str) -> StoreDataError:
    row = series.index[np.flatnonzero(mask)[0]]
    value = series.loc[row]
    return StoreDataError(
        f"table {table!r}, column {column!r}, row {row!r}: {value!r} is not {what}"
    )


def _float_values(series: pd.Series, table: str, column: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64")
    try:
        return pd.to_numeric(series, errors="raise").astype("float64")
    except (TypeError, ValueError):
        coerced = pd.to_numeric(series, errors="coerce")
        raise _bad(table, column, series, (coerced.isna() & series.notna()).to_numpy(), "a number") from None


def column_values(series: pd.Series, coltype: sa.types.TypeEngine, *, table: str = "?",
                  column: str | None = None) -> np.ndarray:
    """Values of ``series`` as an object array ready for a DB-API driver.

    Parameters
    ----------
    series : Series
        One column of the frame being written.
    coltype : sqlalchemy type
        The SQL type of the target column.
    table, column : str
        Used in error messages only.

    Returns
    -------
    ndarray of object
        Plain Python values, ``None`` for NULL.

    Raises
    ------
    StoreDataError
        When a value cannot be represented (non-numeric text in a number column, 1.5 in an integer
        column, ...); the message names the table, column, row label and value.
    """
    column = column or str(series.name)
    k = kind(coltype)
    if k == "float":
        return _float_values(series, table, column).to_numpy(dtype=object, na_value=None)
    if k == "int":
        if series.dtype == object:  # e.g. Python ints and None: keep every digit of 64-bit ids
            try:
                return pd.array(series.to_numpy(), dtype="Int64").to_numpy(dtype=object, na_value=None)
            except (TypeError, ValueError, OverflowError):
                pass  # mixed content: the float path below names the offending row
        values = series if pd.api.types.is_integer_dtype(series.dtype) else _float_values(series, table, column)
        if pd.api.types.is_float_dtype(values.dtype):
            arr = values.to_numpy()
            frac = np.isfinite(arr) & (arr != np.round(arr))
            if frac.any() or np.isinf(arr).any():
                raise _bad(table, column, series, frac | np.isinf(arr), "an integer")
        return pd.array(values, dtype="Int64").to_numpy(dtype=object, na_value=None)
    if k == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            return pd.array(series, dtype="boolean").to_numpy(dtype=object, na_value=None)
        na = series.isna().to_numpy()
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            ok = series.map(lambda v: isinstance(v, (bool, np.bool_, int, np.integer, float)), na_action="ignore")
            if not ok.fillna(True).all():
                raise _bad(table, column, series, ~ok.fillna(True).to_numpy(dtype=bool), "a boolean")
        numeric = _float_values(series, table, column).to_numpy()
        bad = ~na & ~np.isin(numeric, (0.0, 1.0))
        if bad.any():
            raise _bad(table, column, series, bad, "a boolean")
        out = (numeric == 1.0).astype(object)
        out[na] = None
        return out
    if k == "json":
        return np.array([None if _isnull(v) else json.dumps(_jsonable(v)) for v in series], dtype=object)
    if k == "datetime":
        ts = pd.to_datetime(series, errors="raise")
        return np.array([None if pd.isna(v) else v.to_pydatetime() for v in ts], dtype=object)
    # text
    out = series.to_numpy(dtype=object, na_value=None) if len(series) else np.array([], dtype=object)
    if isinstance(series.dtype, pd.StringDtype):  # only str and NA
        return out
    na = pd.isna(series).to_numpy()
    if len(out):
        out = out.copy()
        out[na] = None
        nonstr = np.array([v is not None and not isinstance(v, str) for v in out], dtype=bool)
        if nonstr.any():
            out[nonstr] = [str(v.item() if isinstance(v, np.generic) else v) for v in out[nonstr]]
    return out


def _isnull(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, (list, tuple, dict, np.ndarray)):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.generic):
        return v.item()
    return v


def frame_columns(df: pd.DataFrame, table: sa.Table) -> list[str]:
    """Columns of ``df`` that exist in ``table`` (table order); the others are ignored."""
    present = set(map(str, df.columns))
    return [c.name for c in table.columns if c.name in present]


def prepare(df: pd.DataFrame, table: sa.Table, guard: str | None = None) -> tuple[list[str], pd.DataFrame]:
    """Columns to write and the frame restricted to them, one row per primary key.

    Rows repeating a primary key are collapsed to the last one (with a ``guard`` column, the one
    with the largest guard value), matching what sequential upserts of the rows would leave.
    Rows are sorted by primary key, so concurrent writers take row locks in the same order.
    """
    cols = frame_columns(df, table)
    key = [c.name for c in table.primary_key.columns]
    missing = [k for k in key if k not in cols]
    if missing:
        raise StoreDataError(f"table {table.name!r}: frame lacks primary-key column(s) {missing}")
    sub = df.loc[:, cols]
    try:
        keep = _last_row_per_key(sub, key, guard if guard in cols else None)
    except TypeError:  # mixed types in a key column: collapse duplicates, leave the order alone
        if guard and guard in cols:
            sub = sub.sort_values(guard, kind="mergesort", na_position="first")
        return cols, sub.drop_duplicates(key, keep="last")
    if len(keep) == len(sub) and (keep[1:] > keep[:-1]).all():
        return cols, sub  # already sorted by key, no key repeated
    return cols, sub.take(keep)


def _last_row_per_key(frame: pd.DataFrame, key: Sequence[str], guard: str | None) -> np.ndarray:
    """Positions of the rows to keep, in key order: per key, the row with the largest ``guard``
    (null smallest), ties and no guard -> the last row. Nulls in a key sort last."""

    def codes(column: str, nulls: str) -> np.ndarray:
        return sorted_codes(key_values(frame[column]), nulls)[0]

    n = len(frame)
    key_codes = [codes(k, "last") for k in key]
    sort_keys = [np.arange(n)]
    if guard is not None:
        sort_keys.append(codes(guard, "first"))
    order = np.lexsort([*sort_keys, *reversed(key_codes)])
    if n == 0:
        return order
    same_key_as_next = np.ones(n - 1, dtype=bool)
    for c in key_codes:
        ordered = c[order]
        same_key_as_next &= ordered[1:] == ordered[:-1]
    return order[np.r_[~same_key_as_next, True]]


def column_list(series: pd.Series, coltype: sa.types.TypeEngine, *, table: str = "?",
                column: str | None = None) -> list:
    """Same values as :func:`column_values`, as a Python list (what ``executemany`` iterates).

    Float, integer and boolean numpy columns take a fast path (``ndarray.tolist`` then ``None`` at
    the NULL positions); every other column goes through :func:`column_values`.
    """
    dtype = series.dtype
    k = kind(coltype)
    if isinstance(dtype, np.dtype):
        if k == "float" and dtype.kind == "f":
            arr = series.to_numpy(dtype="float64")
            out = arr.tolist()
            nan = np.flatnonzero(np.isnan(arr))
            for i in nan.tolist():
                out[i] = None
            return out
        if k == "int" and (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8)):
            return series.to_numpy().tolist()
        if k == "bool" and dtype.kind == "b":
            return series.to_numpy().tolist()
    return column_values(series, coltype, table=table, column=column).tolist()


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _arrow(col: Sequence[Any], type_):
    import pyarrow as pa

    return pa.array(col, type=type_)


def _bool_arrow(col: Sequence[Any]):
    import pyarrow as pa

    try:
        return pa.array(col, type=pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite returns 0/1 integers
        return pa.array(col, type=pa.int64()).cast(pa.bool_())


def _kind_of(name: str, table: sa.Table) -> str:
    return kind(table.c[name].type) if name in table.c else "text"


def _values_as_arrow(col: Sequence[Any], k: str):
    """Fetched Python values of one column as an Arrow array of the column kind's type."""
    import pyarrow as pa

    if k == "float":
        return _arrow(col, pa.float64())
    if k == "int":
        return _arrow(col, pa.int64())
    if k == "bool":
        return _bool_arrow(col)
    if k in ("json", "datetime"):  # text (SQLite) or driver objects (PostgreSQL): kept as Python values
        return col
    try:
        return _arrow(col, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # SQLite may hold a number in a TEXT column
        return _arrow([None if v is None else str(v) for v in col], pa.string())


def _arrow_as_kind(arr, k: str):
    """An Arrow array of whatever type SQLite's values were read as, cast to the column's kind."""
    import pyarrow as pa

    if k in ("json", "datetime"):
        return arr.to_pylist()
    target = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}.get(k, pa.string())
    if arr.type == target:
        return arr
    if k == "bool" and not (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        arr = arr.cast(pa.int64())
    return arr.cast(target)


def _pandas_column(name: str, k: str, arr, n: int):
    """One typed column (dtypes as in the module docstring) from an Arrow array of its kind
    (Python values for JSON and timestamp columns)."""
    import pyarrow as pa

    if k == "float":
        return arr.to_numpy(zero_copy_only=False)
    if k == "int":
        if arr.null_count or name in ALWAYS_NULLABLE_INT:
            return arr.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        return arr.to_numpy()
    if k == "bool":
        if arr.null_count:
            return arr.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
        return arr.to_numpy(zero_copy_only=False)
    if k == "json":
        return pd.Series([json.loads(v) if isinstance(v, (str, bytes)) else v for v in arr], dtype=object)
    if k == "datetime":
        conv = [dt.datetime.fromisoformat(v) if isinstance(v, str) else v for v in arr]
        return pd.Series(pd.to_datetime(conv) if n else pd.to_datetime([]), dtype="datetime64[us]")
    return pd.Series(arr.to_pandas(), dtype="str")


def _frame(columns: dict[str, Any], names: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({k: (v.reset_index(drop=True) if isinstance(v, pd.Series) else v)
                         for k, v in columns.items()}, columns=list(names))


def frame_from_rows(rows: Sequence[Sequence[Any]], names: Sequence[str], table: sa.Table) -> pd.DataFrame:
    """A typed frame from fetched rows (see the module docstring for the dtypes).

    Columns are built with pyarrow from the fetched Python values (NULL -> null), then turned into
    numpy/pandas arrays; this is several times faster than per-value Python conversions.
    """
    n = len(rows)
    cols = list(zip(*rows, strict=False)) if n else [()] * len(names)
    data = {}
    for name, col in zip(names, cols, strict=False):
        k = _kind_of(name, table)
        data[name] = _pandas_column(name, k, _values_as_arrow(col, k), n)
    return _frame(data, names)


def frame_from_arrow(result, names: Sequence[str], table: sa.Table) -> pd.DataFrame:
    """Same frame as :func:`frame_from_rows`, from an Arrow table holding the same columns.

    The Arrow types are whatever the reader inferred from SQLite's values (an empty or all-NULL
    column may come as ``int64`` or ``null``); each column is cast to its SQL kind first.
    """
    n = result.num_rows
    data = {}
    for i, name in enumerate(names):
        k = _kind_of(name, table)
        data[name] = _pandas_column(name, k, _arrow_as_kind(result.column(i).combine_chunks(), k), n)
    return _frame(data, names)
