"""Interquartile range of the magnitudes, ``iqr_<fid>`` (reference 2.2c).

``iqr`` is ``scipy.stats.iqr(mag)``: the 75th minus the 25th percentile with numpy's linear
interpolation. ALeRCE computes it for any band that has at least one detection (a single point
gives 0); a band without detections gives NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names
from alerce.features.turbofats import band_index_map, percentile_sorted

__all__ = ["IQRFamily"]


@numba.njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def _iqr_kernel(mag, band_offsets, band_pos, min_points):
    n_obj = band_offsets.shape[0]
    nb = band_pos.shape[0]
    out = np.full((n_obj, nb), np.nan)
    for task in numba.prange(n_obj * nb):
        i = task // nb
        b = task % nb
        p = band_pos[b]
        if p < 0:
            continue
        lo = band_offsets[i, p]
        hi = band_offsets[i, p + 1]
        if hi - lo < min_points or hi - lo < 1:
            continue
        s = np.sort(mag[lo:hi])
        if np.isnan(s[-1]):  # NaN sorts last: scipy's iqr propagates it
            continue
        out[i, b] = percentile_sorted(s, 75.0) - percentile_sorted(s, 25.0)
    return out


class IQRFamily(FeatureFamily):
    """``iqr_<fid>``: P75 - P25 of the band's magnitudes.

    Parameters
    ----------
    min_points : int
        Bands with fewer detections give NaN (ALeRCE: 1).
    bands : sequence of int
        Band codes whose features are produced, default g and r.
    """

    required = ("mag",)

    def __init__(self, min_points: int = 1, bands: Sequence[int] = BANDS) -> None:
        self.min_points = int(min_points)
        self.bands = tuple(int(b) for b in bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(("iqr",), self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Return ``(len(lc), len(bands))`` float64 interquartile ranges."""
        return _iqr_kernel(
            lc.column("mag"),
            lc.column("band_offsets"),
            band_index_map(lc.bands, self.bands), self.min_points,
        )
