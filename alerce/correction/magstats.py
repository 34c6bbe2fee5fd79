"""Per-band magnitude statistics: the ALeRCE ``magstat`` table (reference sections 1.6-1.8, Gen-1).

Everything is computed for all bands of all objects at once: the detections are sorted by
``(oid, fid, mjd, candid)``, each ``(oid, fid)`` run becomes an integer group id, and pandas' cython
group aggregations do the statistics. "First"/"last" detection means minimum/maximum ``mjd``
(ties broken by ``candid``), so the result does not depend on the input row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import as_float, group_bounds, key_values, require_columns, sort_frame
from .constants import DT_MIN, MAGNITUDE_THRESHOLD
from .flags import stellar_flags

#: Columns of the output, in the order of the ``magstat`` table (without ``step_id_corr``).
MAGSTATS_COLUMNS: tuple[str, ...] = (
    "oid", "fid", "stellar", "corrected", "ndet", "ndubious",
    "dmdt_first", "dm_first", "sigmadm_first", "dt_first",
    "magmean", "magmedian", "magmax", "magmin", "magsigma", "maglast", "magfirst",
    "magmean_corr", "magmedian_corr", "magmax_corr", "magmin_corr", "magsigma_corr",
    "maglast_corr", "magfirst_corr",
    "firstmjd", "lastmjd", "saturation_rate",
)

_REQUIRED = ("oid", "fid", "candid", "mjd", "magpsf", "sigmapsf", "magpsf_corr", "corrected", "dubious")
_STATS = {"mean": "magmean", "median": "magmedian", "max": "magmax", "min": "magmin", "std": "magsigma"}


def _band_table(detections: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted numeric working frame, first/last positions and the per-row group id."""
    work = pd.DataFrame(
        {
            "oid": key_values(detections["oid"]),
            "fid": key_values(detections["fid"]),
            "candid": key_values(detections["candid"]),
            "mjd": as_float(detections, "mjd"),
            "magpsf": as_float(detections, "magpsf"),
            "sigmapsf": as_float(detections, "sigmapsf"),
            "magpsf_corr": as_float(detections, "magpsf_corr"),
            "corrected": detections["corrected"].to_numpy(dtype=bool, na_value=False),
            "dubious": detections["dubious"].to_numpy(dtype=bool, na_value=False),
            "distnr": as_float(detections, "distnr"),
            "chinr": as_float(detections, "chinr"),
            "sharpnr": as_float(detections, "sharpnr"),
            "sgscore1": as_float(detections, "sgscore1"),
            "distpsnr1": as_float(detections, "distpsnr1"),
        }
    )
    work = sort_frame(work, ("oid", "fid", "mjd", "candid"))
    first, last = group_bounds(work, ("oid", "fid"))
    gid = np.repeat(np.arange(len(first)), last - first + 1)
    return work, first, last, gid


def dmdt_first(first_rows: pd.DataFrame, non_detections: pd.DataFrame | None) -> pd.DataFrame:
    """dm/dt at the first detection against earlier non-detections (section 1.8).

    Parameters
    ----------
    first_rows : DataFrame
        One row per band: ``oid, fid, mjd, magpsf, sigmapsf`` of the band's first detection.
    non_detections : DataFrame or None
        ``oid, fid, mjd, diffmaglim``.

    Returns
    -------
    DataFrame
        ``dmdt_first, dm_first, sigmadm_first, dt_first`` aligned with ``first_rows`` (NaN when no
        non-detection lies more than 0.5 day before the first detection).
    """
    n = len(first_rows)
    out = pd.DataFrame({c: np.full(n, np.nan) for c in ("dmdt_first", "dm_first", "sigmadm_first", "dt_first")})
    if non_detections is None or len(non_detections) == 0 or n == 0:
        return out
    require_columns(non_detections, ("oid", "fid", "mjd", "diffmaglim"), "non_detections")
    bands = pd.DataFrame(
        {
            "oid": key_values(first_rows["oid"]),
            "fid": key_values(first_rows["fid"]),
            "_gid": np.arange(n),
        }
    )
    nd = pd.DataFrame(
        {
            "oid": key_values(non_detections["oid"]),
            "fid": key_values(non_detections["fid"]),
            "nd_mjd": as_float(non_detections, "mjd"),
            "lim": as_float(non_detections, "diffmaglim"),
        }
    )
    if nd["oid"].dtype != bands["oid"].dtype:
        nd["oid"] = nd["oid"].astype(bands["oid"].dtype)
    if nd["fid"].dtype != bands["fid"].dtype:
        nd["fid"] = nd["fid"].astype(bands["fid"].dtype)
    pairs = nd.merge(bands, on=["oid", "fid"], how="inner")
    gid = pairs["_gid"].to_numpy()
    mjd1 = as_float(first_rows, "mjd")[gid]
    mag1 = as_float(first_rows, "magpsf")[gid]
    sig1 = as_float(first_rows, "sigmapsf")[gid]
    lim = pairs["lim"].to_numpy()
    dt = mjd1 - pairs["nd_mjd"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (mag1 + sig1 - lim) / dt
        keep = (dt > DT_MIN) & np.isfinite(rate)
    cand = pd.DataFrame(
        {
            "_gid": gid[keep],
            "rate": rate[keep],
            "nd_mjd": pairs["nd_mjd"].to_numpy()[keep],
            "dm": (mag1 - lim)[keep],
            "sdm": (sig1 - lim)[keep],
            "dt": dt[keep],
        }
    )
    best = cand.sort_values(["_gid", "rate", "nd_mjd"], kind="mergesort").drop_duplicates("_gid")
    idx = best["_gid"].to_numpy()
    out.loc[idx, "dmdt_first"] = best["rate"].to_numpy()
    out.loc[idx, "dm_first"] = best["dm"].to_numpy()
    out.loc[idx, "sigmadm_first"] = best["sdm"].to_numpy()
    out.loc[idx, "dt_first"] = best["dt"].to_numpy()
    return out


def _ps1_for_bands(first_rows: pd.DataFrame, ps1: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """``sgscore1`` and ``distpsnr1`` for every band (from ``ps1`` by oid, else the first detection)."""
    if ps1 is None:
        return first_rows["sgscore1"].to_numpy(), first_rows["distpsnr1"].to_numpy()
    require_columns(ps1, ("oid", "sgscore1", "distpsnr1"), "ps1")
    if ps1["oid"].duplicated().any():
        dup = ps1.loc[ps1["oid"].duplicated(), "oid"].iloc[0]
        raise ValueError(f"ps1 frame must have one row per oid; {dup!r} appears more than once")
    table = pd.DataFrame(
        {"sgscore1": as_float(ps1, "sgscore1"), "distpsnr1": as_float(ps1, "distpsnr1")},
        index=pd.Index(key_values(ps1["oid"])),
    )
    joined = table.reindex(key_values(first_rows["oid"]))
    return joined["sgscore1"].to_numpy(), joined["distpsnr1"].to_numpy()


def magstats(
    detections: pd.DataFrame,
    non_detections: pd.DataFrame | None,
    ps1: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Gen-1 ``magstat`` table: one row per ``(oid, fid)``.

    Parameters
    ----------
    detections : DataFrame
        Corrected detections (output of :func:`alerce.correction.correct`) carrying ``dubious``
        (:func:`alerce.correction.flag_dubious`). Needs ``oid, fid, candid, mjd, magpsf, sigmapsf,
        magpsf_corr, corrected, dubious``; ``distnr, chinr, sharpnr`` (and ``sgscore1, distpsnr1`` when
        ``ps1`` is None) feed ``stellar`` and are NaN (-> not stellar) when absent.
    non_detections : DataFrame or None
        ``oid, fid, mjd, diffmaglim`` for dm/dt; None gives NaN dm/dt.
    ps1 : DataFrame, optional
        ``oid, sgscore1, distpsnr1`` with one row per oid (the PS1 block of the object's earliest
        alert). When None the values of each band's first detection are used.

    Returns
    -------
    DataFrame
        Columns :data:`MAGSTATS_COLUMNS`, sorted by ``(oid, fid)``. ``magsigma`` uses ddof=1 (NaN for a
        single detection). ``_corr`` statistics skip NaN, i.e. they use corrected detections only (the
        ``100`` sentinels are included, as in ALeRCE). ``saturation_rate`` is
        ``#(magpsf_corr < 13.2) / #(magpsf_corr not null)`` over corrected detections, NaN if none.
    """
    require_columns(detections, _REQUIRED, "detections")
    if len(detections) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in MAGSTATS_COLUMNS})
    work, first, last, gid = _band_table(detections)
    grouped = work[["magpsf", "magpsf_corr"]].groupby(gid, sort=True)
    agg = grouped.agg(["mean", "median", "max", "min", "std"])

    out = pd.DataFrame({"oid": key_values(work["oid"])[first], "fid": key_values(work["fid"])[first]})
    first_rows = work.iloc[first].reset_index(drop=True)
    sgscore1, distpsnr1 = _ps1_for_bands(first_rows, ps1)
    flags = stellar_flags(
        first_rows["distnr"].to_numpy(), distpsnr1, sgscore1,
        first_rows["chinr"].to_numpy(), first_rows["sharpnr"].to_numpy(),
    )
    out["stellar"] = flags["stellar"].to_numpy()
    out["corrected"] = work["corrected"].to_numpy()[first]
    out["ndet"] = (last - first + 1).astype(np.int64)
    out["ndubious"] = np.bincount(gid, weights=work["dubious"].to_numpy(), minlength=len(first)).astype(np.int64)
    dm = dmdt_first(first_rows, non_detections)
    for col in dm.columns:
        out[col] = dm[col].to_numpy()
    for suffix, column in (("", "magpsf"), ("_corr", "magpsf_corr")):
        for stat, name in _STATS.items():
            out[name + suffix] = agg[(column, stat)].to_numpy()
        values = work[column].to_numpy()
        out["maglast" + suffix] = values[last]
        out["magfirst" + suffix] = values[first]
    mjd = work["mjd"].to_numpy()
    out["firstmjd"] = mjd[first]
    out["lastmjd"] = mjd[last]

    corr_mag = work["magpsf_corr"].to_numpy()
    valid = work["corrected"].to_numpy() & ~np.isnan(corr_mag)
    with np.errstate(invalid="ignore"):
        saturated = valid & (corr_mag < MAGNITUDE_THRESHOLD)
    n_valid = np.bincount(gid, weights=valid, minlength=len(first))
    n_sat = np.bincount(gid, weights=saturated, minlength=len(first))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["saturation_rate"] = np.where(n_valid > 0, n_sat / n_valid, np.nan)
    return out[list(MAGSTATS_COLUMNS)]
