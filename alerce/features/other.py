"""Per-object metadata features: ``sgscore1``, ``rb``, ``gal_b``, ``gal_l`` (reference 2.2l)."""

from __future__ import annotations

import numba
import numpy as np

from alerce.features.base import FeatureFamily, PackedLightCurves

__all__ = ["MetadataFamily", "icrs_to_galactic", "ICRS_TO_GALACTIC"]

#: Rotation matrix from ICRS to Galactic unit vectors, i.e. the composite ICRS -> FK5 (J2000, frame
#: bias included) -> Galactic rotation that astropy applies (columns = images of the ICRS x, y, z
#: axes, obtained from astropy 8 and frozen here so no astropy import is needed at run time).
ICRS_TO_GALACTIC = np.array([
    [-0.05487565771259163, -0.8734370519556159, -0.48383507361671546],
    [+0.4941094371927268, -0.44482972122329517, +0.7469821839866676],
    [-0.8676661375596576, -0.19807633727300059, +0.45598381368730156],
])


def icrs_to_galactic(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized ICRS (ra, dec) -> Galactic (l, b), all in degrees.

    Returns
    -------
    l, b : numpy.ndarray
        Galactic longitude in [0, 360) and latitude in [-90, 90]; NaN where the input is NaN.
    """
    ra = np.radians(np.asarray(ra, dtype=np.float64))
    dec = np.radians(np.asarray(dec, dtype=np.float64))
    cosd = np.cos(dec)
    xyz = np.stack([cosd * np.cos(ra), cosd * np.sin(ra), np.sin(dec)])
    gx, gy, gz = np.tensordot(ICRS_TO_GALACTIC, xyz, axes=1)
    lon = np.degrees(np.arctan2(gy, gx)) % 360.0
    lat = np.degrees(np.arcsin(np.clip(gz, -1.0, 1.0)))
    return lon, lat


@numba.njit(nogil=True, cache=True, parallel=True)
def _object_median_mean(rb, ra, dec, band_offsets):
    """Per object over all packed detections: median rb (NaN ignored), mean ra, mean dec."""
    n_obj = band_offsets.shape[0]
    nb = band_offsets.shape[1] - 1
    out = np.full((n_obj, 3), np.nan)
    for i in numba.prange(n_obj):
        s, e = band_offsets[i, 0], band_offsets[i, nb]
        if e > s:
            out[i, 0] = np.nanmedian(rb[s:e])
            out[i, 1] = np.mean(ra[s:e])
            out[i, 2] = np.mean(dec[s:e])
    return out


class MetadataFamily(FeatureFamily):
    """``sgscore1``, ``rb``, ``gal_b``, ``gal_l`` (4 per object).

    ``sgscore1`` comes from the metadata column ``sgscore1`` (stream rule; the packer fills it with
    the median over detections when only detections carry it, ALeRCE's offline rule). ``rb`` is the
    median rb of the preprocessed detections; ``gal_b``/``gal_l`` the Galactic coordinates (degrees)
    of the plain mean ra/dec of the detections, like ALeRCE (no wrap-around handling at ra = 0).
    """

    required = ("rb", "ra", "dec", "metadata")

    @property
    def names(self) -> list[str]:
        return ["sgscore1", "rb", "gal_b", "gal_l"]

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        n = len(lc)
        meta = lc.metadata
        if meta is not None and "sgscore1" in meta.columns and len(meta) == n:
            sg = meta["sgscore1"].to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            sg = np.full(n, np.nan)
        stats = _object_median_mean(lc.rb, lc.ra, lc.dec, lc.band_offsets)
        gal_l, gal_b = icrs_to_galactic(stats[:, 1], stats[:, 2])
        return np.column_stack([sg, stats[:, 0], gal_b, gal_l])
