"""Per-detection and per-band flags: ``dubious`` (section 1.5) and ``stellar`` (section 1.6)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import as_float, first_of_group, isdiffpos_sign, require_columns
from .constants import (
    CHINR_THRESHOLD,
    DISTANCE_THRESHOLD,
    SCORE_THRESHOLD,
    SHARPNR_MAX,
    SHARPNR_MIN,
)
from .magnitudes import is_corrected


def flag_dubious(detections: pd.DataFrame) -> pd.Series:
    """Gen-1 ``dubious`` flag of every detection.

    ``dubious = (~corrected & isdiffpos == -1) | (first_corrected != corrected)`` where
    ``first_corrected`` is the ``corrected`` flag of the detection with the **minimum candid** in the same
    ``(oid, fid)`` (Gen-1 ``correction_step`` semantics).

    Parameters
    ----------
    detections : DataFrame
        Needs ``oid, fid, candid, isdiffpos`` and ``corrected`` (or ``distnr``, from which ``corrected``
        is computed).

    Returns
    -------
    Series of bool
        Named ``dubious``, aligned with ``detections.index``.
    """
    require_columns(detections, ("oid", "fid", "candid", "isdiffpos"), "detections")
    if "corrected" in detections.columns:
        corrected = detections["corrected"].to_numpy(dtype=bool, na_value=False)
    else:
        require_columns(detections, ("distnr",), "detections")
        corrected = is_corrected(as_float(detections, "distnr"))
    negative = isdiffpos_sign(detections["isdiffpos"]) < 0
    first_corrected = corrected[first_of_group(detections, ("oid", "fid"), ("candid",))]
    dubious = (~corrected & negative) | (first_corrected != corrected)
    return pd.Series(dubious, index=detections.index, name="dubious")


def stellar_flags(
    distnr: np.ndarray,
    distpsnr1: np.ndarray,
    sgscore1: np.ndarray,
    chinr: np.ndarray,
    sharpnr: np.ndarray,
) -> pd.DataFrame:
    """Gen-1 ``nearZTF, nearPS1, stellarPS1, stellarZTF, stellar`` (correct labels, correct sharp range).

    ::

        nearZTF    = 0 <= distnr    < 1.4
        nearPS1    = 0 <= distpsnr1 < 1.4
        stellarPS1 = sgscore1 > 0.4
        stellarZTF = chinr < 2  and  -0.13 < sharpnr < 0.1
        stellar    = (nearZTF and nearPS1 and stellarPS1) or (nearZTF and not nearPS1 and stellarZTF)

    Every comparison with NaN is False (so a missing PS1 match means ``nearPS1 = False``).

    Parameters
    ----------
    distnr, distpsnr1, sgscore1, chinr, sharpnr : array_like
        Values of the first detection of each band (one entry per band).

    Returns
    -------
    DataFrame
        Five bool columns, one row per input entry.
    """
    distnr = np.asarray(distnr, dtype="float64")
    distpsnr1 = np.asarray(distpsnr1, dtype="float64")
    sgscore1 = np.asarray(sgscore1, dtype="float64")
    chinr = np.asarray(chinr, dtype="float64")
    sharpnr = np.asarray(sharpnr, dtype="float64")
    with np.errstate(invalid="ignore"):
        near_ztf = (distnr >= 0) & (distnr < DISTANCE_THRESHOLD)
        near_ps1 = (distpsnr1 >= 0) & (distpsnr1 < DISTANCE_THRESHOLD)
        stellar_ps1 = sgscore1 > SCORE_THRESHOLD
        stellar_ztf = (chinr < CHINR_THRESHOLD) & (SHARPNR_MIN < sharpnr) & (sharpnr < SHARPNR_MAX)
    stellar = (near_ztf & near_ps1 & stellar_ps1) | (near_ztf & ~near_ps1 & stellar_ztf)
    return pd.DataFrame(
        {
            "nearZTF": near_ztf,
            "nearPS1": near_ps1,
            "stellarPS1": stellar_ps1,
            "stellarZTF": stellar_ztf,
            "stellar": stellar,
        }
    )
