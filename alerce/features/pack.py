"""Pack many objects' light curves into flat, offset-indexed arrays (:class:`PackedLightCurves`).

Packing is fully vectorized: objects are factorized with one hash pass (``pandas.factorize``),
rows are ordered by a compiled counting sort on (object, band) followed by a stable sort on time
inside each block, and the offsets come from one ``bincount`` + ``cumsum``. No Python runs per
object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd

from alerce.features.base import BANDS, PackedLightCurves

__all__ = ["pack_lightcurves", "unpack_band"]


def _f64(frame: pd.DataFrame, col: str, default: float = np.nan) -> np.ndarray:
    if col not in frame.columns:
        return np.full(len(frame), default, dtype=np.float64)
    return frame[col].to_numpy(dtype=np.float64, na_value=np.nan)


def _object_codes(oid_column: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each row's oid in ``index`` (-1 when absent); one hash lookup per row."""
    if len(index) == 0 or len(oid_column) == 0:
        return np.full(len(oid_column), -1, dtype=np.int64)
    values = pd.Index(oid_column)
    if values.dtype != index.dtype:
        values = values.astype(index.dtype)
    return index.get_indexer(values).astype(np.int64)


def _band_codes(fid: np.ndarray, bands: Sequence[int]) -> np.ndarray:
    """Position of each row's fid in ``bands`` (-1 for other bands or missing fid)."""
    out = np.full(len(fid), -1, dtype=np.int64)
    for b, band in enumerate(bands):
        out[fid == band] = b
    return out


@numba.njit(nogil=True, cache=True)
def _block_order(group, time, n_groups):
    """Stable order of rows by ``group`` (counting sort), then by ``time`` inside each group.

    ``group`` holds values in ``[0, n_groups)``. Returns the row order and the block starts.
    """
    counts = np.zeros(n_groups + 1, dtype=np.int64)
    for g in group:
        counts[g + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    order = np.empty(len(group), dtype=np.int64)
    for r in range(len(group)):
        g = group[r]
        order[fill[g]] = r
        fill[g] += 1
    for g in range(n_groups):
        s, e = starts[g], starts[g + 1]
        if e - s > 1:
            block = order[s:e]
            sub = np.argsort(time[block], kind="mergesort")
            order[s:e] = block[sub]
    return order, starts


def _sorted_rows(frame: pd.DataFrame, obj: np.ndarray, bands: Sequence[int], n: int):
    """Rows of ``frame`` with a known object and band, ordered by (object, band, mjd).

    Returns the row indices and the ``(n, n_bands + 1)`` offsets.
    """
    nb = len(bands)
    band = _band_codes(_f64(frame, "fid"), bands)
    mjd = _f64(frame, "mjd")
    rows = np.flatnonzero((obj >= 0) & (band >= 0))
    group = obj[rows] * nb + band[rows]
    order, starts = _block_order(group, mjd[rows], n * nb)
    idx = np.arange(n, dtype=np.int64)[:, None] * nb + np.arange(nb + 1, dtype=np.int64)[None, :]
    return rows[order], starts[idx]


def _metadata(
    detections: pd.DataFrame, oids: np.ndarray, metadata: pd.DataFrame | None
) -> pd.DataFrame:
    """Per-object scalars indexed by oid: ``corrected``, ``sgscore1`` and the user's metadata.

    ``sgscore1`` falls back to the median over the object's detections when it is not in
    ``metadata`` but is a detection column (ALeRCE's offline rule, reference 2.2l).
    """
    index = pd.Index(oids, name="oid", dtype=object)
    meta = pd.DataFrame(index=index)
    if metadata is not None and len(metadata.columns):
        user = metadata.set_index("oid") if "oid" in metadata.columns else metadata
        user = user[~user.index.duplicated(keep="first")]
        user.index = user.index.astype(object)
        meta = user.reindex(index)
        meta.index.name = "oid"
    for col, how in (("corrected_object", "all"), ("sgscore1", "median")):
        if col in detections.columns:
            out = "corrected" if col == "corrected_object" else col
            if out in meta.columns and meta[out].notna().any():
                continue
            values = detections[col]
            if how == "median":
                values = values.astype("float64")
            grouped = values.groupby(detections["oid"].astype(object), sort=False).agg(how)
            meta[out] = grouped.reindex(index).to_numpy()
    return meta


def pack_lightcurves(
    detections: pd.DataFrame,
    non_detections: pd.DataFrame | None = None,
    metadata: pd.DataFrame | None = None,
    bands: Sequence[int] = BANDS,
) -> PackedLightCurves:
    """Pack (preprocessed) detections and non-detections of many objects.

    Parameters
    ----------
    detections : pandas.DataFrame
        Needs ``oid, fid, mjd`` and ``magpsf``; uses ``magpsf_ml``/``sigmapsf_ml`` (from
        :func:`~alerce.features.preprocess.preprocess_detections`) for ``mag``/``err`` when
        present, else ``magpsf``/``sigmapsf``. Optional ``isdiffpos`` (default +1), ``rb``,
        ``ra``, ``dec`` (default NaN). Rows of other bands are left out.
    non_detections : pandas.DataFrame, optional
        ``oid, fid, mjd, diffmaglim``. Rows of objects without detections are left out.
    metadata : pandas.DataFrame, optional
        Per-object scalars (``oid`` column or index), e.g. ``sgscore1``, ``W1mag`` ...
    bands : sequence of int
        Band codes in offset order (default g, r).

    Returns
    -------
    PackedLightCurves
        Objects are the sorted unique oids of ``detections``.
    """
    for col in ("oid", "fid", "mjd", "magpsf"):
        if col not in detections.columns:
            raise KeyError(f"pack_lightcurves: detections lack column {col!r}")
    bands = tuple(int(b) for b in bands)
    nb = len(bands)
    if len(detections):
        codes, uniques = pd.factorize(detections["oid"], sort=True)
        obj = codes.astype(np.int64)
        oid_index = pd.Index(uniques)
    else:
        obj = np.empty(0, dtype=np.int64)
        oid_index = pd.Index([], dtype=object)
    oids = np.asarray(oid_index, dtype=object)
    n = len(oids)

    rows, det_offsets = _sorted_rows(detections, obj, bands, n)
    mag_col = "magpsf_ml" if "magpsf_ml" in detections.columns else "magpsf"
    err_col = "sigmapsf_ml" if "sigmapsf_ml" in detections.columns else "sigmapsf"

    def col(name: str, default: float = np.nan) -> np.ndarray:
        return np.ascontiguousarray(_f64(detections, name, default)[rows])

    if non_detections is None or len(non_detections) == 0:
        nd_time = np.empty(0, dtype=np.float64)
        nd_lim = np.empty(0, dtype=np.float64)
        nd_offsets = np.zeros((n, nb + 1), dtype=np.int64)
    else:
        for c in ("oid", "fid", "mjd", "diffmaglim"):
            if c not in non_detections.columns:
                raise KeyError(f"pack_lightcurves: non_detections lack column {c!r}")
        nd_obj = _object_codes(non_detections["oid"], oid_index)
        nd_rows, nd_offsets = _sorted_rows(non_detections, nd_obj, bands, n)
        nd_time = np.ascontiguousarray(_f64(non_detections, "mjd")[nd_rows])
        nd_lim = np.ascontiguousarray(_f64(non_detections, "diffmaglim")[nd_rows])

    return PackedLightCurves(
        oids=oids,
        bands=bands,
        time=col("mjd"),
        mag=col(mag_col),
        err=col(err_col),
        mag_raw=col("magpsf"),
        err_raw=col("sigmapsf"),
        isdiffpos=col("isdiffpos", 1.0),
        rb=col("rb"),
        ra=col("ra"),
        dec=col("dec"),
        band_offsets=det_offsets,
        nd_time=nd_time,
        nd_diffmaglim=nd_lim,
        nd_band_offsets=nd_offsets,
        metadata=_metadata(detections, oids, metadata),
    )


def unpack_band(lc: PackedLightCurves, i: int, b: int, attr: str = "mag") -> np.ndarray:
    """Detections of object ``i`` in band index ``b`` for attribute ``attr`` (debug/test helper)."""
    start, stop = lc.band_offsets[i, b], lc.band_offsets[i, b + 1]
    return getattr(lc, attr)[start:stop]
