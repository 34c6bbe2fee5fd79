"""Long-format rows of the ``feature`` table (reference section 2.3).

ALeRCE's Gen-1 feature step stores one row per (oid, name, fid) with ``fid`` 0 for object-level
features (AllWISE colors, ``gal_b``, ``gal_l``, ``rb``, ``sgscore1``), 12 for multiband features
(``Multiband_period``, ``PPE``/``Period_fit``, ``g-r_*``, ``Power_rate_*``) and otherwise the band of
the ``_1``/``_2`` suffix, stripped from the name.

Deviation: ALeRCE also strips the trailing ``_2``/``_3``/``_4`` of ``Power_rate_2/3/4``, which then
all become ``("Power_rate", 12)`` and collide on the primary key. We keep the full name of every
fid-12 feature (``Power_rate_2``, ``Power_rate_1/2`` ...), so rows are unique.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["feature_rows", "feature_fid"]

_FID0_PREFIXES = ("W1", "W2", "W3", "W4", "g-W", "r-W")
_FID0_NAMES = {"gal_b", "gal_l", "rb", "sgscore1"}
_FID12_NAMES = {"Multiband_period", "PPE", "Period_fit"}
_FID12_PREFIXES = ("g-r_", "Power_rate_")


def feature_fid(name: str) -> tuple[str, int]:
    """``(stored name, fid)`` of one feature column name (see module docstring)."""
    if name in _FID0_NAMES or name.startswith(_FID0_PREFIXES):
        return name, 0
    if name in _FID12_NAMES or name.startswith(_FID12_PREFIXES):
        return name, 12
    base, sep, suffix = name.rpartition("_")
    if sep and suffix.isdigit():
        return base, int(suffix)
    return name, 0


def feature_rows(features: pd.DataFrame, version: str) -> pd.DataFrame:
    """Melt a wide feature frame into ``feature`` table rows.

    Parameters
    ----------
    features : pandas.DataFrame
        Wide frame indexed by oid (as returned by :func:`~alerce.features.extract_features`).
    version : str
        Feature version stored in every row.

    Returns
    -------
    pandas.DataFrame
        Columns ``oid, name, fid, value, version``; ``value`` float64 with NaN kept (the store
        decides how to write missing values), one row per (object, feature).
    """
    cols = list(features.columns)
    mapped = [feature_fid(str(c)) for c in cols]
    names = np.array([m[0] for m in mapped], dtype=object)
    fids = np.array([m[1] for m in mapped], dtype=np.int64)
    n, k = features.shape
    oids = np.asarray(features.index, dtype=object)
    values = features.to_numpy(dtype=np.float64, na_value=np.nan)
    rows = pd.DataFrame({
        "oid": np.repeat(oids, k),
        "name": np.tile(names, n),
        "fid": np.tile(fids, n),
        "value": values.reshape(-1),
    })
    rows["version"] = version
    if rows.duplicated(["oid", "name", "fid"]).any():
        dup = rows[rows.duplicated(["oid", "name", "fid"], keep=False)].head(4)
        raise ValueError(f"feature_rows: duplicate (oid, name, fid) keys, e.g.\n{dup}")
    return rows
