"""The 23 alert metadata features of the stamp classifier (reference 4.2).

:func:`metadata_features` builds the raw feature matrix from an ``alerts`` frame;
:func:`normalize_features` clips and z-scores it with the model's stored statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import FEATURE_CLIPPING, FEATURE_NAMES, FEATURE_NORM_STATS

#: Candidate columns read from the ``alerts`` frame.
INPUT_COLUMNS: tuple[str, ...] = (
    "sgscore1", "distpsnr1", "sgscore2", "distpsnr2", "sgscore3", "distpsnr3", "isdiffpos",
    "fwhm", "magpsf", "sigmapsf", "ra", "dec", "diffmaglim", "classtar", "ndethist", "ncovhist",
    "chinr", "sharpnr",
)


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


@cache
def _rotation(frame: str) -> np.ndarray:
    """3x3 matrix taking ICRS unit vectors to ``frame`` unit vectors, measured once with astropy.

    For directions without distance both targets are pure rotations of ICRS, so transforming the
    three basis vectors with astropy gives the exact matrix; applying it is then fully vectorized.
    """
    import astropy.units as u
    from astropy.coordinates import BarycentricMeanEcliptic, Galactic, SkyCoord

    target = Galactic() if frame == "galactic" else BarycentricMeanEcliptic(equinox="J2000")
    # the ICRS basis vectors x, y, z as directions (ra, dec) = (0, 0), (90, 0), (0, 90)
    basis = SkyCoord(ra=[0.0, 90.0, 0.0] * u.deg, dec=[0.0, 0.0, 90.0] * u.deg, frame="icrs")
    moved = basis.transform_to(target).represent_as("unitspherical").to_cartesian()
    cart = moved.xyz.value  # (3, 3): column j is the image of basis vector j
    return np.asarray(cart, dtype=np.float64)


def sky_coordinates(ra: np.ndarray, dec: np.ndarray) -> dict[str, np.ndarray]:
    """Ecliptic (J2000 mean equinox) and galactic latitude/longitude in degrees, vectorized.

    Longitudes are in [0, 360); matches ``SkyCoord(...).transform_to(...)`` of astropy (PyEphem
    was used by ALeRCE; both give the J2000 ecliptic and the IAU galactic frame).
    """
    vec = _unit_vectors(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64))
    out = {}
    for prefix, frame in (("ecl", "ecliptic"), ("gal", "galactic")):
        v = vec @ _rotation(frame).T
        lat = np.degrees(np.arcsin(np.clip(v[..., 2], -1.0, 1.0)))
        lon = np.mod(np.degrees(np.arctan2(v[..., 1], v[..., 0])), 360.0)
        out[f"{prefix}_lat"], out[f"{prefix}_long"] = lat, lon
    return out


def encode_isdiffpos(values: pd.Series | np.ndarray) -> np.ndarray:
    """ALeRCE's stamp encoding: positive ('t', 1, +1, True) -> 0, negative ('f', -1, 0) -> 1.

    The ``alerts`` frame stores isdiffpos as int8 +1/-1; strings 't'/'f'/'1'/'0' are accepted.
    Anything else gives NaN.
    """
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind == "b":  # True -> positive
        return np.where(arr, 0.0, 1.0)
    if arr.dtype.kind in "iuf":  # numeric fast path, same table as the strings below
        num = arr.astype(np.float64)
        return np.where(num == 1.0, 0.0, np.where((num == -1.0) | (num == 0.0), 1.0, np.nan))
    s = pd.Series(np.asarray(values, dtype=object))
    text = s.astype("string").str.strip().str.lower()
    out = np.full(len(s), np.nan)
    out[text.isin(["t", "1", "+1", "1.0", "true"]).fillna(False).to_numpy(bool)] = 0.0
    out[text.isin(["f", "-1", "0", "-1.0", "0.0", "false"]).fillna(False).to_numpy(bool)] = 1.0
    return out


def _column(alerts: pd.DataFrame, name: str) -> np.ndarray:
    if name not in alerts:
        return np.full(len(alerts), np.nan)
    col = alerts[name]
    if col.dtype.kind in "iuf" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype):
        return col.to_numpy(dtype=np.float64)  # plain numpy column: no coercion needed
    return pd.to_numeric(alerts[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def metadata_features(alerts: pd.DataFrame) -> pd.DataFrame:
    """Raw (unclipped, unnormalized) 23 metadata features, one row per alert.

    Parameters
    ----------
    alerts : DataFrame
        The ``alerts`` frame of :class:`alerce.batch.AlertBatch` (columns :data:`INPUT_COLUMNS`;
        missing columns give NaN).

    Returns
    -------
    DataFrame
        Columns :data:`~alerce.classifiers.stamp.constants.FEATURE_NAMES`, same index as
        ``alerts``. ``non_detections = ncovhist - ndethist``; coordinates from
        :func:`sky_coordinates`.
    """
    cols = {name: _column(alerts, name) for name in INPUT_COLUMNS if name != "isdiffpos"}
    cols["isdiffpos"] = (
        encode_isdiffpos(alerts["isdiffpos"]) if "isdiffpos" in alerts else np.full(len(alerts), np.nan)
    )
    cols.update(sky_coordinates(cols["ra"], cols["dec"]))
    cols["non_detections"] = cols["ncovhist"] - cols["ndethist"]
    return pd.DataFrame({name: cols[name] for name in FEATURE_NAMES}, index=alerts.index)


def normalize_features(
    raw: np.ndarray | pd.DataFrame,
    stats: Mapping[str, tuple[float, float]] = FEATURE_NORM_STATS,
    clipping: Mapping[str, tuple[float | None, float | None]] = FEATURE_CLIPPING,
) -> np.ndarray:
    """Clip then z-score the raw features; NaN (missing input) becomes 0, the training mean.

    Parameters
    ----------
    raw : array (n, 23) or DataFrame with :data:`FEATURE_NAMES` columns
    stats : mapping name -> (mean, std)
    clipping : mapping name -> (low, high), None = unbounded

    Returns
    -------
    ndarray (n, 23) float32
    """
    x = np.array(raw[list(FEATURE_NAMES)] if isinstance(raw, pd.DataFrame) else raw,
                 dtype=np.float64, copy=True)
    if x.ndim != 2 or x.shape[1] != len(FEATURE_NAMES):
        raise ValueError(f"expected features of shape (n, {len(FEATURE_NAMES)}), got {x.shape}")
    for j, name in enumerate(FEATURE_NAMES):
        low, high = clipping.get(name, (None, None))
        if low is not None or high is not None:
            x[:, j] = np.clip(x[:, j], low, high)
        mean, std = stats[name]
        x[:, j] = (x[:, j] - mean) / std
    x[~np.isfinite(x)] = 0.0
    return x.astype(np.float32)
