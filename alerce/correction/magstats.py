"""Per-band magnitude statistics: the ALeRCE ``magstat`` table (reference sections 1.6-1.8, Gen-1).

Everything is computed for all bands of all objects at once: the detections are ordered by
``(oid, fid, mjd, candid)``, each ``(oid, fid)`` run becomes an integer group id, and numpy run
reductions (``reduceat``, ``bincount``) do the statistics. "First"/"last" detection means minimum/maximum ``mjd``
(ties broken by ``candid``), so the result does not depend on the input row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerce.codes import key_values, run_starts, sorted_codes

from ._util import as_float, group_stats, require_columns
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


def _band_order(detections: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order by ``(oid, fid, mjd, candid)`` (nulls last), each band's first sorted position and
    the band number of every sorted row."""
    oid, _ = sorted_codes(key_values(detections["oid"]))
    fid, _ = sorted_codes(key_values(detections["fid"]))
    candid, _ = sorted_codes(key_values(detections["candid"]))
    order = np.lexsort((candid, as_float(detections, "mjd"), fid, oid))  # NaN mjd sorts last
    first = run_starts(oid[order], fid[order])
    gid = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(order)]))
    return order, first, gid


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
    # each non-detection's band: position of its (oid, fid) among the bands, -1 when absent
    oid_codes, oids = pd.factorize(key_values(first_rows["oid"]))
    fid_codes, fids = pd.factorize(key_values(first_rows["fid"]))
    oids, fids = pd.Index(oids), pd.Index(fids)
    band_keys = np.where((oid_codes < 0) | (fid_codes < 0), -1, oid_codes.astype(np.int64) * len(fids) + fid_codes)
    by_key = np.argsort(band_keys, kind="stable")
    nd_oid = oids.get_indexer(key_values(non_detections["oid"]))
    nd_fid = fids.get_indexer(key_values(non_detections["fid"]))
    nd_keys = nd_oid.astype(np.int64) * len(fids) + nd_fid
    slot = np.minimum(np.searchsorted(band_keys[by_key], nd_keys), n - 1)
    matched = (nd_oid >= 0) & (nd_fid >= 0) & (band_keys[by_key][slot] == nd_keys)
    gid = by_key[slot[matched]]
    nd_mjd = as_float(non_detections, "mjd")[matched]
    lim = as_float(non_detections, "diffmaglim")[matched]
    mjd1 = as_float(first_rows, "mjd")[gid]
    mag1 = as_float(first_rows, "magpsf")[gid]
    sig1 = as_float(first_rows, "sigmapsf")[gid]
    dt = mjd1 - nd_mjd
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = (mag1 + sig1 - lim) / dt
        keep = (dt > DT_MIN) & np.isfinite(rate)
    gid, rate, nd_mjd, dt, lim, mag1, sig1 = (a[keep] for a in (gid, rate, nd_mjd, dt, lim, mag1, sig1))
    # per band, the steepest rate (ties: the earliest non-detection, then input order)
    best = np.lexsort((nd_mjd, rate, gid))
    best = best[run_starts(gid[best])]
    idx = gid[best]
    for col, values in (("dmdt_first", rate), ("dm_first", mag1 - lim), ("sigmadm_first", sig1 - lim), ("dt_first", dt)):
        column = out[col].to_numpy(copy=True)
        column[idx] = values[best]
        out[col] = column
    return out


def _ps1_for_bands(oid, sgscore1: np.ndarray, distpsnr1: np.ndarray,
                   ps1: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """``sgscore1`` and ``distpsnr1`` for every band (from ``ps1`` by oid, else the first detection's)."""
    if ps1 is None:
        return sgscore1, distpsnr1
    require_columns(ps1, ("oid", "sgscore1", "distpsnr1"), "ps1")
    if ps1["oid"].duplicated().any():
        dup = ps1.loc[ps1["oid"].duplicated(), "oid"].iloc[0]
        raise ValueError(f"ps1 frame must have one row per oid; {dup!r} appears more than once")
    pos = pd.Index(key_values(ps1["oid"])).get_indexer(oid)
    found = pos >= 0
    return (np.where(found, as_float(ps1, "sgscore1")[pos], np.nan),
            np.where(found, as_float(ps1, "distpsnr1")[pos], np.nan))


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
    order, first, gid = _band_order(detections)
    last = np.r_[first[1:], len(order)] - 1
    first_rows_pos = order[first]

    def sorted_float(column: str) -> np.ndarray:
        return as_float(detections, column)[order]

    def at_first(column: str) -> np.ndarray:
        return as_float(detections, column)[first_rows_pos]

    oid = key_values(detections["oid"]).take(first_rows_pos)
    fid = key_values(detections["fid"]).take(first_rows_pos)
    first_rows = pd.DataFrame({"oid": oid, "fid": fid, "mjd": at_first("mjd"), "magpsf": at_first("magpsf"),
                               "sigmapsf": at_first("sigmapsf")})
    sgscore1, distpsnr1 = _ps1_for_bands(oid, at_first("sgscore1"), at_first("distpsnr1"), ps1)
    flags = stellar_flags(at_first("distnr"), distpsnr1, sgscore1, at_first("chinr"), at_first("sharpnr"))
    corrected = detections["corrected"].to_numpy(dtype=bool, na_value=False)
    out = {
        "oid": oid, "fid": fid, "stellar": flags["stellar"].to_numpy(), "corrected": corrected[first_rows_pos],
        "ndet": (last - first + 1).astype(np.int64),
        "ndubious": np.bincount(gid, weights=detections["dubious"].to_numpy(dtype=bool, na_value=False)[order],
                                minlength=len(first)).astype(np.int64),
    }
    dm = dmdt_first(first_rows, non_detections)
    out.update({col: dm[col].to_numpy() for col in dm.columns})
    for suffix, column in (("", "magpsf"), ("_corr", "magpsf_corr")):
        values = sorted_float(column)
        stats = group_stats(values, first, gid)
        for stat, name in _STATS.items():
            out[name + suffix] = stats[stat]
        out["maglast" + suffix] = values[last]
        out["magfirst" + suffix] = values[first]
    mjd = sorted_float("mjd")
    out["firstmjd"] = mjd[first]
    out["lastmjd"] = mjd[last]

    corr_mag = sorted_float("magpsf_corr")
    valid = corrected[order] & ~np.isnan(corr_mag)
    with np.errstate(invalid="ignore"):
        saturated = valid & (corr_mag < MAGNITUDE_THRESHOLD)
    n_valid = np.bincount(gid, weights=valid, minlength=len(first))
    n_sat = np.bincount(gid, weights=saturated, minlength=len(first))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["saturation_rate"] = np.where(n_valid > 0, n_sat / n_valid, np.nan)
    return pd.DataFrame({c: out[c] for c in MAGSTATS_COLUMNS})
