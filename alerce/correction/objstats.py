"""Object statistics: the ALeRCE ``object`` table (reference section 1.9, Gen-1)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..batch import MJD_OFFSET
from ._util import as_float, isdiffpos_sign, key_values, require_columns

#: Columns of the output (the ``object`` table without ``step_id_corr``, plus ``ndubious``).
OBJECT_COLUMNS: tuple[str, ...] = (
    "oid", "ndethist", "ncovhist", "mjdstarthist", "mjdendhist", "corrected", "stellar", "ndet",
    "ndubious", "g_r_max", "g_r_max_corr", "g_r_mean", "g_r_mean_corr", "meanra", "meandec",
    "sigmara", "sigmadec", "deltajd", "firstmjd", "lastmjd", "diffpos", "reference_change",
)


def _hist_columns(hist: pd.DataFrame | None, oids: pd.Index) -> pd.DataFrame:
    """``ndethist, ncovhist, mjdstarthist, mjdendhist`` per oid (NaN when unknown)."""
    out = pd.DataFrame(index=oids)
    if hist is None:
        for c in ("ndethist", "ncovhist", "mjdstarthist", "mjdendhist"):
            out[c] = np.nan
        return out
    require_columns(hist, ("oid",), "hist")
    if hist["oid"].duplicated().any():
        dup = hist.loc[hist["oid"].duplicated(), "oid"].iloc[0]
        raise ValueError(f"hist frame must have one row per oid (the largest-candid alert); {dup!r} repeats")
    table = pd.DataFrame(index=pd.Index(key_values(hist["oid"])))
    table["ndethist"] = as_float(hist, "ndethist")
    table["ncovhist"] = as_float(hist, "ncovhist")
    for name in ("starthist", "endhist"):
        if f"mjd{name}" in hist.columns:
            table[f"mjd{name}"] = as_float(hist, f"mjd{name}")
        elif f"jd{name}" in hist.columns:
            table[f"mjd{name}"] = as_float(hist, f"jd{name}") - MJD_OFFSET
        else:
            table[f"mjd{name}"] = np.nan
    return table.reindex(oids)


def _reference_end(reference: pd.DataFrame | None, detections: pd.DataFrame, oids: pd.Index) -> np.ndarray:
    """Maximum ``mjdendref`` over each object's reference rows (or its detections' ``mjdendref``)."""
    source = reference if reference is not None else detections
    if "mjdendref" not in source.columns:
        if reference is not None:
            raise ValueError(f"reference frame is missing column 'mjdendref'; it has {list(reference.columns)}")
        return np.full(len(oids), np.nan)
    end = pd.Series(as_float(source, "mjdendref")).groupby(key_values(source["oid"])).max()
    return end.reindex(oids).to_numpy(dtype="float64")


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
    key = key_values(detections["oid"])
    work = pd.DataFrame(
        {
            "ra": as_float(detections, "ra"),
            "dec": as_float(detections, "dec"),
            "mjd": as_float(detections, "mjd"),
            "isdiffpos": isdiffpos_sign(detections["isdiffpos"]),
        }
    )
    agg = work.groupby(key, sort=True).agg(
        meanra=("ra", "mean"), meandec=("dec", "mean"), sigmara=("ra", "std"), sigmadec=("dec", "std"),
        firstmjd=("mjd", "min"), lastmjd=("mjd", "max"), minpos=("isdiffpos", "min"),
    )
    oids = agg.index
    out = _hist_columns(hist, oids)

    ms = magstats.groupby(key_values(magstats["oid"]), sort=True).agg(
        corrected=("corrected", "all"), stellar=("stellar", "all"), ndet=("ndet", "sum"),
        ndubious=("ndubious", "sum"),
    ).reindex(oids)
    out["corrected"] = ms["corrected"].fillna(False).to_numpy(dtype=bool)
    out["stellar"] = ms["stellar"].fillna(False).to_numpy(dtype=bool)
    out["ndet"] = ms["ndet"].to_numpy()
    out["ndubious"] = ms["ndubious"].to_numpy()

    wide = (
        magstats.set_index(["oid", "fid"])[["magmin", "magmean", "magmin_corr", "magmean_corr"]]
        .astype("float64")
        .unstack("fid")
        .reindex(oids)
    )

    def band(col: str, fid: int) -> np.ndarray:
        if (col, fid) in wide.columns:
            return wide[(col, fid)].to_numpy(dtype="float64", na_value=np.nan)
        return np.full(len(oids), np.nan)

    out["g_r_max"] = band("magmin", 1) - band("magmin", 2)
    out["g_r_max_corr"] = band("magmin_corr", 1) - band("magmin_corr", 2)
    out["g_r_mean"] = band("magmean", 1) - band("magmean", 2)
    out["g_r_mean_corr"] = band("magmean_corr", 1) - band("magmean_corr", 2)
    for c in ("meanra", "meandec", "sigmara", "sigmadec"):
        out[c] = agg[c].to_numpy()
    out["firstmjd"] = agg["firstmjd"].to_numpy()
    out["lastmjd"] = agg["lastmjd"].to_numpy()
    out["deltajd"] = out["lastmjd"] - out["firstmjd"]
    out["diffpos"] = agg["minpos"].to_numpy() > 0
    ref_end = _reference_end(reference, detections, oids)
    with np.errstate(invalid="ignore"):
        out["reference_change"] = ref_end > out["firstmjd"].to_numpy()
    out.index.name = None
    out = out.reset_index(names="oid")
    return out[list(OBJECT_COLUMNS)]
