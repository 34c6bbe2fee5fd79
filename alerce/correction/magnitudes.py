"""Corrected magnitudes (reference sections 1.3 and 1.4, Gen-1 semantics).

A ZTF difference-image magnitude ``magpsf`` measures the flux *change* with respect to the reference
image. When the alert sits on top of a catalogued reference source (``distnr < 1.4`` pixels) the
total (reference + difference) magnitude is recovered as::

    F_ref = 10**(-0.4 magnr);  F_diff = 10**(-0.4 magpsf);  F_tot = F_ref + isdiffpos * F_diff
    magpsf_corr       = -2.5 log10(F_tot)
    sigmapsf_corr     = sqrt(F_diff**2 sigmapsf**2 - F_ref**2 sigmagnr**2) / F_tot
    sigmapsf_corr_ext = F_diff sigmapsf / F_tot
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import as_float, isdiffpos_sign, require_columns
from .constants import DISTANCE_THRESHOLD, ZERO_MAG

#: Columns :func:`correct` needs.
CORRECTION_INPUT_COLUMNS = ("magpsf", "sigmapsf", "isdiffpos", "distnr", "magnr", "sigmagnr")


def is_corrected(distnr: np.ndarray) -> np.ndarray:
    """``corrected`` flag: ``distnr < 1.4`` (NaN -> False; negative sentinels count as True, as in ALeRCE)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(distnr, dtype="float64") < DISTANCE_THRESHOLD


def correct_magnitudes(
    magpsf: np.ndarray,
    sigmapsf: np.ndarray,
    magnr: np.ndarray,
    sigmagnr: np.ndarray,
    isdiffpos: np.ndarray,
    corrected: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorized Gen-1 correction of difference magnitudes.

    Parameters
    ----------
    magpsf, sigmapsf : array_like
        Difference-image PSF magnitude and its error.
    magnr, sigmagnr : array_like
        Magnitude (and error) of the nearest reference source.
    isdiffpos : array_like of {+1, -1}
        Sign of the difference flux.
    corrected : array_like of bool
        Rows to correct; all other rows get NaN.

    Returns
    -------
    magpsf_corr, sigmapsf_corr, sigmapsf_corr_ext : ndarray of float64
        NaN where not corrected, where ``magnr < 0`` or ``magpsf < 0`` (e.g. the -999 sentinel) or where
        an input is NaN; all three are ``100`` (:data:`ZERO_MAG`) when the total flux is ``<= 0``;
        ``sigmapsf_corr`` alone is ``100`` when its radicand is negative.
    """
    magpsf = np.asarray(magpsf, dtype="float64")
    sigmapsf = np.asarray(sigmapsf, dtype="float64")
    magnr = np.asarray(magnr, dtype="float64")
    sigmagnr = np.asarray(sigmagnr, dtype="float64")
    sign = np.asarray(isdiffpos, dtype="float64")
    corrected = np.asarray(corrected, dtype=bool)

    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        f_ref = 10.0 ** (-0.4 * magnr)
        f_diff = 10.0 ** (-0.4 * magpsf)
        f_tot = f_ref + sign * f_diff
        mag_corr = -2.5 * np.log10(f_tot)
        radicand = (f_diff * sigmapsf) ** 2 - (f_ref * sigmagnr) ** 2
        sig_corr = np.sqrt(radicand) / f_tot
        sig_ext = f_diff * sigmapsf / f_tot

        sig_corr = np.where(radicand < 0, ZERO_MAG, sig_corr)
        nonpositive = f_tot <= 0
        mag_corr = np.where(nonpositive, ZERO_MAG, mag_corr)
        sig_corr = np.where(nonpositive, ZERO_MAG, sig_corr)
        sig_ext = np.where(nonpositive, ZERO_MAG, sig_ext)

        invalid = ~corrected | (magnr < 0) | (magpsf < 0)
    mag_corr = np.where(invalid, np.nan, mag_corr)
    sig_corr = np.where(invalid, np.nan, sig_corr)
    sig_ext = np.where(invalid, np.nan, sig_ext)
    return mag_corr, sig_corr, sig_ext


def correct(detections: pd.DataFrame) -> pd.DataFrame:
    """Add ``corrected``, ``magpsf_corr``, ``sigmapsf_corr`` and ``sigmapsf_corr_ext`` to detections.

    Parameters
    ----------
    detections : DataFrame
        Needs ``magpsf, sigmapsf, isdiffpos, distnr, magnr, sigmagnr`` (see
        :data:`alerce.batch.DETECTION_COLUMNS`). ``isdiffpos`` may be +1/-1 or ZTF's 't'/'f'/'1'/'0'.

    Returns
    -------
    DataFrame
        A copy with ``isdiffpos`` normalized to int8 +1/-1 and the four new columns (see
        :func:`correct_magnitudes` for the NaN and ``100`` conventions).
    """
    require_columns(detections, CORRECTION_INPUT_COLUMNS, "detections")
    return add_correction(detections.copy())


def add_correction(out: pd.DataFrame) -> pd.DataFrame:
    """In-place version of :func:`correct` (for frames the caller already owns); returns ``out``."""
    require_columns(out, CORRECTION_INPUT_COLUMNS, "detections")
    sign = isdiffpos_sign(out["isdiffpos"])
    out["isdiffpos"] = sign
    corrected = is_corrected(as_float(out, "distnr"))
    mag, sig, ext = correct_magnitudes(
        as_float(out, "magpsf"),
        as_float(out, "sigmapsf"),
        as_float(out, "magnr"),
        as_float(out, "sigmagnr"),
        sign,
        corrected,
    )
    out["corrected"] = corrected
    out["magpsf_corr"] = mag
    out["sigmapsf_corr"] = sig
    out["sigmapsf_corr_ext"] = ext
    return out
