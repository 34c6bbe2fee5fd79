"""Cone search helpers: exact angular distance and the SQL prefilter used on SQLite.

The prefilter keeps rows whose declination lies in ``[dec - r, dec + r]`` and whose right ascension
lies in ``[ra - dra, ra + dra]`` with ``dra = asin(sin r / cos dec)`` (the largest RA offset of a
point of the circle), split in two ranges when the window crosses RA = 0/360 and dropped when the
circle reaches a pole. The exact test is then :func:`angular_distance` (haversine) in numpy.
"""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

#: Widening of the prefilter window (degrees) so rounding never drops a row at the edge.
PAD_DEG = 1e-9


def angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine formula, accurate at all separations).

    All arguments are in degrees and broadcast against each other.
    """
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype="float64")) for v in (ra1, dec1, ra2, dec2))
    sdd = np.sin((dec2 - dec1) / 2.0)
    sda = np.sin((ra2 - ra1) / 2.0)
    h = sdd * sdd + np.cos(dec1) * np.cos(dec2) * sda * sda
    return np.degrees(2.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def check_cone(ra: float, dec: float, radius_arcsec: float) -> tuple[float, float, float]:
    """Validate a cone; return ``(ra mod 360, dec, radius in degrees)``.

    Raises
    ------
    ValueError
        Non-finite values, ``|dec| > 90`` or a negative radius.
    """
    try:
        ra, dec, radius = float(ra), float(dec), float(radius_arcsec)
    except (TypeError, ValueError):
        raise ValueError(f"ra, dec and radius must be numbers, got {ra!r}, {dec!r}, {radius_arcsec!r}") from None
    if not (np.isfinite(ra) and np.isfinite(dec) and np.isfinite(radius)):
        raise ValueError(f"ra, dec and radius must be finite, got {ra}, {dec}, {radius}")
    if abs(dec) > 90:
        raise ValueError(f"dec must be in [-90, 90] degrees, got {dec}")
    if radius < 0:
        raise ValueError(f"radius must be >= 0 arcsec, got {radius}")
    return ra % 360.0, dec, radius / 3600.0


def ra_windows(ra: float, dec: float, radius_deg: float) -> list[tuple[float, float]] | None:
    """RA intervals (degrees, within [0, 360]) holding every point of the cone; None = all RA."""
    if abs(dec) + radius_deg >= 90.0 - 1e-9 or radius_deg >= 90.0:
        return None
    s = np.sin(np.radians(radius_deg)) / np.cos(np.radians(dec))
    if s >= 1.0:
        return None
    dra = float(np.degrees(np.arcsin(s))) + PAD_DEG
    lo, hi = ra - dra, ra + dra
    if lo < 0.0:
        return [(0.0, hi), (lo + 360.0, 360.0)]
    if hi > 360.0:
        return [(lo, 360.0), (0.0, hi - 360.0)]
    return [(lo, hi)]


def prefilter(ra_col: sa.ColumnElement, dec_col: sa.ColumnElement, ra: float, dec: float,
              radius_deg: float) -> sa.ColumnElement:
    """SQL condition keeping (at least) every row of the cone (declination band + RA window)."""
    cond = sa.and_(dec_col >= dec - radius_deg - PAD_DEG, dec_col <= dec + radius_deg + PAD_DEG)
    windows = ra_windows(ra, dec, radius_deg)
    if windows is not None:
        cond = sa.and_(cond, sa.or_(*(sa.and_(ra_col >= lo, ra_col <= hi) for lo, hi in windows)))
    return cond


def in_cone(ra_values, dec_values, ra: float, dec: float, radius_deg: float) -> np.ndarray:
    """Boolean mask of the points within ``radius_deg`` of (ra, dec); NaN positions are outside."""
    d = angular_distance(ra_values, dec_values, ra, dec)
    return np.nan_to_num(d, nan=np.inf) <= radius_deg
