"""Reuse the stored features of bands whose light curve did not change.

A live alert adds a detection in one band, yet the whole object's features are recomputed. The
:attr:`~alerce.features.base.FeatureFamily.band_local` families (Turbo-FATS, GP_DRW, MHPS, SPM:
about two thirds of the per-band work) give the same values for a band whose preprocessed points
are the same as when its stored features were computed, so those bands are skipped and their
stored values used. Everything else (periodogram, colours, SN and non-detection features ...) is
always recomputed.

"The same" is decided on the preprocessed points themselves (time, corrected and raw magnitudes
and errors, compared exactly), not on which alerts arrived: a new detection, a changed flag, a
flip of the object's corrected/uncorrected magnitude choice or a detection crossing a cut all
show up there. The stored features must have been computed from the stored detections, which
holds for a store written by the pipeline (detections and features of a batch are written in one
transaction) with the same feature ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerce.features.base import PackedLightCurves, block_rows, positions

__all__ = ["StoredFeatures", "same_band_points", "previous_band_features"]

#: Packed arrays compared to decide that a band's points are unchanged.
_COMPARED = ("time", "mag", "err", "mag_raw", "err_raw")


@dataclass
class StoredFeatures:
    """What a store holds for some objects, to reuse the features of unchanged bands.

    Attributes
    ----------
    detections : pandas.DataFrame
        The stored (corrected) detections of the objects, as before the new alerts.
    objects : pandas.DataFrame or None
        Their stored object rows (``oid``, ``corrected``), for the magnitude choice.
    features : pandas.DataFrame
        Their stored ``feature`` rows: ``oid, name, fid, value, version``.
    version : str
        Only rows of this feature version are reused.
    """

    detections: pd.DataFrame
    objects: pd.DataFrame | None
    features: pd.DataFrame
    version: str


def same_band_points(new: PackedLightCurves, old: PackedLightCurves) -> np.ndarray:
    """``(len(new), len(new.bands))`` booleans: True where the object's band holds exactly the same
    points in ``old`` (same count, time, magnitudes and errors); False for objects absent from
    ``old``. Both must be packed with the same bands."""
    if tuple(new.bands) != tuple(old.bands):
        raise ValueError(f"bands differ: {new.bands} and {old.bands}")
    n, n_bands = len(new), len(new.bands)
    out = np.zeros((n, n_bands), dtype=bool)
    if not n or not len(old):
        return out
    pos = pd.Index(np.asarray(old.oids, dtype=object)).get_indexer(
        pd.Index(np.asarray(new.oids, dtype=object)))
    found = np.flatnonzero(pos >= 0)
    new_off = np.asarray(new.band_offsets, dtype=np.int64)[found]
    old_off = np.asarray(old.band_offsets, dtype=np.int64)[pos[found]]
    for b in range(n_bands):
        new_start, old_start = new_off[:, b], old_off[:, b]
        length = new_off[:, b + 1] - new_start
        same_length = length == old_off[:, b + 1] - old_start
        objects = found[same_length]
        length = length[same_length]
        # row positions of every compared block, side by side
        rows_new = block_rows(new_start[same_length], length)
        rows_old = block_rows(old_start[same_length], length)
        block = np.repeat(np.arange(len(objects)), length)
        differs = np.zeros(len(rows_new), dtype=bool)
        for name in _COMPARED:
            differs |= getattr(new, name)[rows_new] != getattr(old, name)[rows_old]
        mismatches = np.bincount(block, weights=differs, minlength=len(objects))
        out[objects, b] = mismatches == 0
    return out


def previous_band_features(features: pd.DataFrame, names: list[str], version: str,
                           oids: np.ndarray, bands: tuple[int, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """Stored values of the per-band features ``names`` (``<name>_<fid>``) for ``oids``.

    Returns the wide frame (indexed by oid, one column per name) and a ``(len(oids), len(bands))``
    mask of the (object, band) pairs for which every one of that band's ``names`` is stored with
    ``version`` (a stored NULL counts: it is the value NaN).
    """
    base_of = {name: name.rsplit("_", 1)[0] for name in names}
    band_of = {name: int(name.rsplit("_", 1)[1]) for name in names}
    complete = np.zeros((len(oids), len(bands)), dtype=bool)
    rows = features[features["version"] == version] if len(features) else features
    if not len(rows):
        return pd.DataFrame(index=pd.Index([], dtype=object, name="oid")), complete
    # column of each stored row: (base name, fid) -> position in ``names`` (-1: not wanted)
    bases = pd.Index(sorted(set(base_of.values())))
    fids = sorted(set(band_of.values()))
    column = np.full((len(bases) + 1, len(fids) + 1), -1, dtype=np.int64)  # last row/col: unknown
    for j, name in enumerate(names):
        column[bases.get_loc(base_of[name]), fids.index(band_of[name])] = j
    base_code = positions(rows["name"], bases)
    fid_code = positions(rows["fid"], pd.Index(fids))
    at = column[base_code, fid_code]  # code -1 picks the last ("unknown") row or column
    obj = positions(rows["oid"], pd.Index(np.asarray(oids, dtype=object)))
    ok = (at >= 0) & (obj >= 0)
    at, obj = at[ok], obj[ok]
    wide = np.full((len(oids), len(names)), np.nan)
    wide[obj, at] = rows["value"].to_numpy(dtype=np.float64, na_value=np.nan)[ok]
    held = np.zeros((len(oids), len(names)), dtype=bool)
    held[obj, at] = True
    column_band = np.array([band_of[name] for name in names])
    for b, band in enumerate(bands):
        cols = column_band == band
        complete[:, b] = held[:, cols].all(axis=1) if cols.any() else False
    frame = pd.DataFrame(wide, index=pd.Index(np.asarray(oids, dtype=object), name="oid"), columns=list(names))
    return frame, complete
