"""Object statistics: the ALeRCE ``object`` table (reference section 1.9, Gen-1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerce.codes import key_values, run_starts, sorted_codes

from ..batch import MJD_OFFSET
from ._util import as_float, group_stats, isdiffpos_sign, require_columns

#: Columns of the output (the ``object`` table without ``step_id_corr``, plus ``ndubious``).
OBJECT_COLUMNS: tuple[str, ...] = (
    "oid", "ndethist", "ncovhist", "mjdstarthist", "mjdendhist", "corrected", "stellar", "ndet",
    "ndubious", "g_r_max", "g_r_max_corr", "g_r_mean", "g_r_mean_corr", "meanra", "meandec",
    "sigmara", "sigmadec", "deltajd", "firstmjd", "lastmjd", "diffpos", "reference_change",
)


def _hist_columns(hist: pd.DataFrame | None, oids) -> dict[str, np.ndarray]:
    """``ndethist, ncovhist, mjdstarthist, mjdendhist`` per oid (NaN when unknown)."""
    names = ("ndethist", "ncovhist", "mjdstarthist", "mjdendhist")
    if hist is None:
        return {c: np.full(len(oids), np.nan) for c in names}
    require_columns(hist, ("oid",), "hist")
    if hist["oid"].duplicated().any():
        dup = hist.loc[hist["oid"].duplicated(), "oid"].iloc[0]
        raise ValueError(f"hist frame must have one row per oid (the largest-candid alert); {dup!r} repeats")
    columns = {"ndethist": as_float(hist, "ndethist"), "ncovhist": as_float(hist, "ncovhist")}
    for name in ("starthist", "endhist"):
        if f"mjd{name}" in hist.columns:
            columns[f"mjd{name}"] = as_float(hist, f"mjd{name}")
        elif f"jd{name}" in hist.columns:
            columns[f"mjd{name}"] = as_float(hist, f"jd{name}") - MJD_OFFSET
        else:
            columns[f"mjd{name}"] = np.full(len(hist), np.nan)
    pos = pd.Index(key_values(hist["oid"])).get_indexer(oids)
    return {c: np.where(pos >= 0, columns[c][pos], np.nan) for c in names}


def _reference_end(reference: pd.DataFrame | None, detections: pd.DataFrame, oids) -> np.ndarray:
    """Maximum ``mjdendref`` over each object's reference rows (or its detections' ``mjdendref``)."""
    source = reference if reference is not None else detections
    if "mjdendref" not in source.columns:
        if reference is not None:
            raise ValueError(f"reference frame is missing column 'mjdendref'; it has {list(reference.columns)}")
        return np.full(len(oids), np.nan)
    pos = pd.Index(oids).get_indexer(key_values(source["oid"]))
    keep = pos >= 0
    end = np.full(len(oids), np.nan)
    np.fmax.at(end, pos[keep], as_float(source, "mjdendref")[keep])  # NaN skipped, as pandas' max does
    return end


def object_stats(
    detections: pd.DataFrame,
    magstats: pd.DataFrame,
    hist: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Gen-1 ``object`` table: one row per oid.

    Parameters
    ----------
    detections : DataFrame
        The object's detections (``oid, mjd, ra, dec, isdiffpos``; ``mjdendref`` is used for
        ``reference_change`` when ``reference`` is None).
    magstats : DataFrame
        Output of :func:`alerce.correction.magstats` for the same objects.
    hist : DataFrame, optional
        ``oid, ndethist, ncovhist`` and ``jdstarthist``/``mjdstarthist``, ``jdendhist``/``mjdendhist``
        of the alert with the largest candid of each object (one row per oid). None -> NaN.
    reference : DataFrame, optional
        ``oid, rfid, mjdendref`` rows (the ``reference`` table). None -> the detections' ``mjdendref``.

    Returns
    -------
    DataFrame
        Columns :data:`OBJECT_COLUMNS`, sorted by oid:

        * ``corrected`` / ``stellar``: all bands' magstats flags are True;
        * ``ndet`` / ``ndubious``: sums over bands (``ndubious`` is not stored in ALeRCE's table);
        * ``g_r_max = magmin(g) - magmin(r)``, ``g_r_mean = magmean(g) - magmean(r)`` and their
          ``_corr`` versions, NaN unless both fid 1 and fid 2 exist;
        * ``meanra``/``meandec`` plain means, ``sigmara``/``sigmadec`` std (ddof=1, degrees; NaN for a
          single detection);
        * ``firstmjd``/``lastmjd`` min/max mjd, ``deltajd = lastmjd - firstmjd``;
        * ``diffpos``: every detection has ``isdiffpos > 0``;
        * ``reference_change``: ``max(mjdendref) > firstmjd`` (False when unknown).
    """
    require_columns(detections, ("oid", "mjd", "ra", "dec", "isdiffpos"), "detections")
    require_columns(magstats, ("oid", "fid", "corrected", "stellar", "ndet", "ndubious", "magmin", "magmean",
                               "magmin_corr", "magmean_corr"), "magstats")
    if len(detections) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in OBJECT_COLUMNS})
    codes, oids = sorted_codes(key_values(detections["oid"]))
    has_oid = codes < len(oids)  # rows with a null oid belong to no object
    order = np.argsort(codes[has_oid], kind="stable")
    rows = np.flatnonzero(has_oid)[order]
    starts = run_starts(codes[rows])
    gid = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
    out: dict[str, np.ndarray] = {"oid": oids, **_hist_columns(hist, oids)}

    ms_pos = pd.Index(oids).get_indexer(key_values(magstats["oid"]))
    listed = ms_pos >= 0
    n_bands = np.bincount(ms_pos[listed], minlength=len(oids))

    def band_all(column: str) -> np.ndarray:
        false = ~magstats[column].to_numpy(dtype=bool, na_value=False)[listed]
        return (n_bands > 0) & (np.bincount(ms_pos[listed], weights=false, minlength=len(oids)) == 0)

    def band_sum(column: str) -> np.ndarray:
        total = np.bincount(ms_pos[listed], weights=magstats[column].to_numpy(dtype="float64")[listed],
                            minlength=len(oids))
        return total.astype(np.int64) if n_bands.all() else np.where(n_bands > 0, total, np.nan)

    out["corrected"] = band_all("corrected")
    out["stellar"] = band_all("stellar")
    out["ndet"] = band_sum("ndet")
    out["ndubious"] = band_sum("ndubious")

    fids = key_values(magstats["fid"])
    if pd.DataFrame({"oid": ms_pos, "fid": fids}).duplicated().any():
        raise ValueError("magstats frame must have one row per (oid, fid)")

    def band(col: str, fid: int) -> np.ndarray:
        values = np.full(len(oids), np.nan)
        mine = listed & (np.asarray(fids) == fid)
        values[ms_pos[mine]] = as_float(magstats, col)[mine]
        return values

    out["g_r_max"] = band("magmin", 1) - band("magmin", 2)
    out["g_r_max_corr"] = band("magmin_corr", 1) - band("magmin_corr", 2)
    out["g_r_mean"] = band("magmean", 1) - band("magmean", 2)
    out["g_r_mean_corr"] = band("magmean_corr", 1) - band("magmean_corr", 2)
    for name, column in (("ra", "ra"), ("dec", "dec")):
        stats = group_stats(as_float(detections, column)[rows], starts, gid)
        out[f"mean{name}"] = stats["mean"]
        out[f"sigma{name}"] = stats["std"]
    mjd = as_float(detections, "mjd")[rows]
    out["firstmjd"] = np.fmin.reduceat(mjd, starts) if len(rows) else np.array([])
    out["lastmjd"] = np.fmax.reduceat(mjd, starts) if len(rows) else np.array([])
    out["deltajd"] = out["lastmjd"] - out["firstmjd"]
    sign = isdiffpos_sign(detections["isdiffpos"])[rows]
    out["diffpos"] = np.minimum.reduceat(sign, starts) > 0 if len(rows) else np.array([], dtype=bool)
    ref_end = _reference_end(reference, detections, oids)
    with np.errstate(invalid="ignore"):
        out["reference_change"] = ref_end > out["firstmjd"]
    return pd.DataFrame({c: out[c] for c in OBJECT_COLUMNS})
