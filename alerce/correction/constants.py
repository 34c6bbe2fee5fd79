"""Thresholds and sentinels of ALeRCE's light-curve correction (reference section 1.2)."""

from __future__ import annotations

#: ``distnr`` (pixels) below which a detection is "corrected"; also the ``nearZTF`` threshold and,
#: in arcsec, the ``nearPS1`` threshold on ``distpsnr1``.
DISTANCE_THRESHOLD: float = 1.4
#: ``sgscore1 > SCORE_THRESHOLD`` means stellar according to PS1.
SCORE_THRESHOLD: float = 0.4
#: ``chinr < CHINR_THRESHOLD`` is one half of the ZTF stellarity test.
CHINR_THRESHOLD: float = 2.0
#: ``SHARPNR_MIN < sharpnr < SHARPNR_MAX`` is the other half.
SHARPNR_MIN: float = -0.13
SHARPNR_MAX: float = 0.1
#: Placeholder for an "infinite" magnitude or error (zero or negative total flux).
ZERO_MAG: float = 100.0
#: A corrected magnitude brighter than this counts as saturated.
MAGNITUDE_THRESHOLD: float = 13.2
#: Minimum separation (days) between a non-detection and the first detection for dm/dt.
DT_MIN: float = 0.5
#: ZTF forced-photometry "no value" sentinel.
FP_SENTINEL: float = -99999.0
#: AB zero point of magnitudes computed from fluxes in micro-Jansky.
UJY_ZERO_POINT: float = 23.9
#: 2.5 / ln(10): converts a relative flux error into a magnitude error.
MAG_ERR_FACTOR: float = 1.0857
