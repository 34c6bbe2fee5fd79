"""Input preprocessing of light curves before feature extraction (reference section 2.1).

ALeRCE's ``DetectionsPreprocessorZTF`` (lc_classifier 1.2.1-P) chooses one magnitude column per
object, removes bogus and invalid detections, deduplicates epochs and keeps only objects with
enough detections in g or r. Everything here is columnar pandas (no per-object Python).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerce.features.base import positions

#: Minimum number of detections in at least one band (g or r) for an object to keep its features.
MIN_DETECTIONS = 6
#: Real/bogus threshold: detections with ``rb`` below it are discarded.
RB_THRESHOLD = 0.55
#: Bands counted by the minimum-detection rule.
FEATURE_BANDS = (1, 2)

#: Columns that must be finite for a detection to be kept (reference 2.1 step 4).
_REQUIRED_FINITE = ("mjd", "fid", "magpsf", "sigmapsf", "magpsf_ml", "sigmapsf_ml", "ra", "dec", "rb")


def _object_corrected(detections: pd.DataFrame, objects: pd.DataFrame | None) -> pd.Series:
    """Per-detection boolean: does the detection's object use corrected magnitudes?

    With ``objects`` (batch mode) the object's ``corrected`` flag decides; otherwise (stream mode)
    an object is corrected only if all its detections are.
    """
    oid = detections["oid"]
    if objects is not None and "corrected" in objects.columns:
        obj = objects
        if "oid" in obj.columns:
            obj = obj.set_index("oid")
        flag = obj["corrected"].astype("boolean").fillna(False).astype(bool)
        flag = flag[~flag.index.duplicated(keep="first")]
        values = np.append(flag.to_numpy(dtype=bool), False)  # absent objects (-1): not corrected
        return pd.Series(values[positions(oid, flag.index)], index=detections.index)
    if "corrected" not in detections.columns:
        return pd.Series(False, index=detections.index)
    corr = detections["corrected"].astype("boolean").fillna(False).astype(bool)
    all_corr = corr.groupby(oid, sort=False).transform("all")
    return all_corr.astype(bool)


def preprocess_detections(
    detections: pd.DataFrame,
    objects: pd.DataFrame | None = None,
    *,
    rb_threshold: float = RB_THRESHOLD,
    min_detections: int = MIN_DETECTIONS,
) -> pd.DataFrame:
    """Clean detections for feature extraction (reference section 2.1).

    Parameters
    ----------
    detections : pandas.DataFrame
        Columns of :data:`alerce.batch.DETECTION_COLUMNS` plus ``magpsf_corr``,
        ``sigmapsf_corr_ext`` and ``corrected`` (as produced by :mod:`alerce.correction`).
        Without ``magpsf_corr`` every object is treated as uncorrected.
    objects : pandas.DataFrame, optional
        Per-object frame (``oid`` column or index) with a ``corrected`` flag (batch mode). Without
        it an object counts as corrected only if all its detections are (stream mode).
    rb_threshold : float
        Keep detections with ``rb >= rb_threshold``.
    min_detections : int
        Keep objects with at least this many clean detections in g or in r.

    Returns
    -------
    pandas.DataFrame
        One row per clean detection, sorted by (oid, mjd), fresh RangeIndex, with the input columns
        plus ``magpsf_ml`` and ``sigmapsf_ml`` (corrected magnitude and *extended* error for
        corrected objects, raw ``magpsf``/``sigmapsf`` otherwise) and ``corrected_object``.

    Raises
    ------
    KeyError
        If one of ``oid, mjd, fid, magpsf, sigmapsf, ra, dec, rb`` is missing.
    """
    missing = [c for c in ("oid", "mjd", "fid", "magpsf", "sigmapsf", "ra", "dec", "rb")
               if c not in detections.columns]
    if missing:
        raise KeyError(f"preprocess_detections: detections lack column(s) {missing}")
    if len(detections) == 0:
        det = detections.copy()
        det["magpsf_ml"] = pd.Series(dtype="float64")
        det["sigmapsf_ml"] = pd.Series(dtype="float64")
        det["corrected_object"] = pd.Series(dtype="bool")
        return det.reset_index(drop=True)

    converted: dict[str, np.ndarray] = {}

    def values(col: str) -> np.ndarray:  # each column converted once (rb, mjd, fid are read twice)
        if col not in converted:
            converted[col] = pd.to_numeric(detections[col], errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan)
        return converted[col]

    corrected = _object_corrected(detections, objects).to_numpy(dtype=bool).copy()
    magpsf, sigmapsf = values("magpsf"), values("sigmapsf")
    if "magpsf_corr" in detections.columns and "sigmapsf_corr_ext" in detections.columns:
        mcorr, ecorr = values("magpsf_corr"), values("sigmapsf_corr_ext")
    else:
        corrected[:] = False
        mcorr, ecorr = magpsf, sigmapsf
    added = {"magpsf_ml": np.where(corrected, mcorr, magpsf),
             "sigmapsf_ml": np.where(corrected, ecorr, sigmapsf),
             "corrected_object": corrected}

    # Rows are selected with one index array; the frame is copied once, at the end.
    # 3. drop bogus, 4. drop rows with NaN/inf in the required columns,
    # 5. keep 0 < sigmapsf_ml < 1 (removes the 100 sentinels) ...
    keep = values("rb") >= rb_threshold
    for col in _REQUIRED_FINITE:
        keep &= np.isfinite(added[col] if col in added else values(col))
    err = added["sigmapsf_ml"]
    keep &= (err > 0) & (err < 1.0)
    # 2. ... in time order (stable: ties keep the input order) ...
    mjd = values("mjd")
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(mjd[rows], kind="stable")]
    # 6. ... drop duplicate (oid, mjd), keeping the first in time order ...
    oid = pd.factorize(detections["oid"].iloc[rows], sort=True, use_na_sentinel=False)[0]
    first = ~pd.DataFrame({"oid": oid, "mjd": mjd[rows]}).duplicated(keep="first").to_numpy()
    rows, oid = rows[first], oid[first]
    # 7. ... keep objects with >= min_detections in g or r ...
    fid = values("fid")[rows]
    enough = np.zeros(int(oid.max()) + 1 if len(oid) else 0, dtype=bool)
    for band in FEATURE_BANDS:
        enough |= np.bincount(oid[fid == band], minlength=len(enough)) >= min_detections
    rows, oid = rows[enough[oid]], oid[enough[oid]]
    # ... sorted by (oid, mjd): codes follow the sorted oids and rows are in time order
    rows = rows[np.argsort(oid, kind="stable")]
    det = detections.iloc[rows].reset_index(drop=True)
    if any(col in det.columns for col in added):  # recomputed in place, as before
        for col, arr in added.items():
            det[col] = arr[rows]
        return det
    return pd.concat([det, pd.DataFrame({col: arr[rows] for col, arr in added.items()})], axis=1)


def preprocess_non_detections(non_detections: pd.DataFrame) -> pd.DataFrame:
    """Drop duplicate non-detections on ``(oid, round(mjd, 6), fid)`` (reference 2.1 step 8).

    Rows with a non-finite ``mjd`` or ``diffmaglim`` are dropped as well (they cannot be used by any
    feature). Returns a frame sorted by (oid, fid, mjd) with a fresh RangeIndex.
    """
    missing = [c for c in ("oid", "fid", "mjd", "diffmaglim") if c not in non_detections.columns]
    if missing:
        raise KeyError(f"preprocess_non_detections: non_detections lack column(s) {missing}")
    nd = non_detections.copy()
    if len(nd) == 0:
        return nd.reset_index(drop=True)
    mjd = nd["mjd"].to_numpy(dtype="float64", na_value=np.nan)
    lim = nd["diffmaglim"].to_numpy(dtype="float64", na_value=np.nan)
    nd = nd[np.isfinite(mjd) & np.isfinite(lim)]
    key = nd["mjd"].astype("float64").round(6)
    nd = nd.assign(_round_mjd=key).drop_duplicates(["oid", "_round_mjd", "fid"], keep="first")
    nd = nd.drop(columns="_round_mjd")
    return nd.sort_values(["oid", "fid", "mjd"], kind="stable").reset_index(drop=True)
