"""Magnitudes of ZTF forced photometry (``fp_hists``), Gen-2 rule of reference section 5.2."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._util import as_float, require_columns
from .constants import FP_SENTINEL, MAG_ERR_FACTOR, UJY_ZERO_POINT
from .magnitudes import correct_magnitudes, is_corrected

#: fp_hists reference-source fields where ``-99999`` means "no value" (turned into NaN).
_SENTINEL_FIELDS = ("distnr", "magnr", "sigmagnr", "chinr", "sharpnr", "ranr", "decnr")


def valid_forced_photometry(fp: pd.DataFrame) -> np.ndarray:
    """Rows whose ``forcediffimflux`` and ``forcediffimfluxunc`` are not null, 0 or -99999."""
    require_columns(fp, ("forcediffimflux", "forcediffimfluxunc"), "forced_photometry")
    flux = as_float(fp, "forcediffimflux")
    unc = as_float(fp, "forcediffimfluxunc")
    ok = np.ones(len(fp), dtype=bool)
    for v in (flux, unc):
        ok &= ~np.isnan(v) & (v != 0) & (v != FP_SENTINEL)
    return ok


def forced_photometry_magnitudes(fp: pd.DataFrame) -> pd.DataFrame:
    """Magnitudes and corrected magnitudes of forced-photometry entries.

    Entries whose ``forcediffimflux`` or ``forcediffimfluxunc`` is null, 0 or -99999 are dropped. Then::

        flux_uJy  = forcediffimflux * 10**((8.9 - magzpsci) / 2.5) * 1e6
        mag       = -2.5 log10(|flux_uJy|) + 23.9
        e_mag     = 1.0857 * fluxunc_uJy / |flux_uJy|
        isdiffpos = sign(forcediffimflux)

    and ``mag, e_mag, isdiffpos`` go through the same correction as detections with the row's own
    ``distnr, magnr, sigmagnr`` (:func:`alerce.correction.magnitudes.correct_magnitudes`).

    Parameters
    ----------
    fp : DataFrame
        :data:`alerce.batch.FORCED_PHOTOMETRY_COLUMNS` (at least ``forcediffimflux,
        forcediffimfluxunc, magzpsci, distnr, magnr, sigmagnr``).

    Returns
    -------
    DataFrame
        The kept rows (fresh index) with ``-99999`` in the reference fields (``distnr, magnr,
        sigmagnr, chinr, sharpnr, ranr, decnr``) replaced by NaN, plus ``mag, e_mag, isdiffpos`` (int8),
        ``corrected`` (``distnr < 1.4``), ``mag_corr, e_mag_corr, e_mag_corr_ext``. A null ``magzpsci``
        gives NaN magnitudes.
    """
    require_columns(fp, ("forcediffimflux", "forcediffimfluxunc", "magzpsci", "distnr", "magnr", "sigmagnr"),
                    "forced_photometry")
    out = fp.loc[valid_forced_photometry(fp)].reset_index(drop=True)
    for col in _SENTINEL_FIELDS:
        if col in out.columns:
            values = as_float(out, col)
            out[col] = np.where(values == FP_SENTINEL, np.nan, values)
    flux_raw = as_float(out, "forcediffimflux")
    scale = 10.0 ** ((8.9 - as_float(out, "magzpsci")) / 2.5) * 1e6
    flux = flux_raw * scale
    unc = as_float(out, "forcediffimfluxunc") * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = -2.5 * np.log10(np.abs(flux)) + UJY_ZERO_POINT
        e_mag = MAG_ERR_FACTOR * unc / np.abs(flux)
    sign = np.where(flux_raw > 0, 1, -1).astype(np.int8)
    corrected = is_corrected(as_float(out, "distnr"))
    mag_corr, e_corr, e_ext = correct_magnitudes(
        mag, e_mag, as_float(out, "magnr"), as_float(out, "sigmagnr"), sign, corrected
    )
    out["mag"] = mag
    out["e_mag"] = e_mag
    out["isdiffpos"] = sign
    out["corrected"] = corrected
    out["mag_corr"] = mag_corr
    out["e_mag_corr"] = e_corr
    out["e_mag_corr_ext"] = e_ext
    return out
