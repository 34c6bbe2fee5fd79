"""Output formats of the query API: ``pandas``, ``json``, ``votable`` and ``csv``."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

#: Formats every query method accepts.
FORMATS: tuple[str, ...] = ("pandas", "json", "votable", "csv")


def check_format(fmt: str) -> str:
    """Return ``fmt`` or raise ``ValueError`` listing the valid formats."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return fmt


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: plain Python values, NaN/NA/inf -> None."""
    cols = [str(c) for c in df.columns]
    columns = [df[c].to_numpy(dtype=object) for c in df.columns]
    return [{c: _plain(v) for c, v in zip(cols, row)} for row in zip(*columns)]


def to_votable(df: pd.DataFrame) -> bytes:
    """The frame as a VOTable XML document (bytes), through :class:`astropy.table.Table`."""
    from astropy.io.votable import from_table
    from astropy.table import Table

    data = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_string_dtype(s.dtype) or s.dtype == object:
            data[str(c)] = np.array(["" if _plain(v) is None else str(v) for v in s], dtype=str)
        elif isinstance(s.dtype, pd.BooleanDtype):
            data[str(c)] = np.ma.masked_array(s.fillna(False).to_numpy(bool), mask=s.isna().to_numpy())
        elif isinstance(s.dtype, pd.Int64Dtype):
            data[str(c)] = np.ma.masked_array(s.fillna(0).to_numpy("int64"), mask=s.isna().to_numpy())
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            data[str(c)] = np.array([("" if pd.isna(v) else v.isoformat()) for v in s], dtype=str)
        else:
            data[str(c)] = s.to_numpy()
    table = Table(data) if len(df.columns) else Table()
    buf = io.BytesIO()
    from_table(table).to_xml(buf)
    return buf.getvalue()


def convert(df: pd.DataFrame, fmt: str) -> Any:
    """Turn a result frame into the requested format.

    Returns
    -------
    DataFrame (``pandas``), list of dict (``json``), bytes (``votable``: VOTable XML) or str (``csv``).
    """
    check_format(fmt)
    df = df.reset_index(drop=True)
    if fmt == "pandas":
        return df
    if fmt == "json":
        return records(df)
    if fmt == "csv":
        return df.to_csv(index=False)
    return to_votable(df)
