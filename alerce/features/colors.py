"""Color features: ZTF g-r (reference 2.2j) and AllWISE colors (reference 2.2k)."""

from __future__ import annotations

import numba
import numpy as np

from alerce.features.base import FeatureFamily, PackedLightCurves

__all__ = ["ColorFamily", "WiseColorFamily", "band_min_mean", "WISE_NAMES", "COLOR_NAMES"]

COLOR_NAMES: tuple[str, ...] = ("g-r_max", "g-r_max_corr", "g-r_mean", "g-r_mean_corr")
WISE_NAMES: tuple[str, ...] = ("W1-W2", "W2-W3", "g-W2", "g-W3", "r-W2", "r-W3")
#: Metadata columns holding the AllWISE Vega magnitudes.
WISE_COLUMNS: tuple[str, ...] = ("W1mag", "W2mag", "W3mag")


@numba.njit(nogil=True, cache=True, parallel=True)
def band_min_mean(values, band_offsets):
    """Per object and band: minimum and mean of ``values`` (NaN for an empty band).

    Returns two arrays of shape ``(n_objects, n_bands)``.
    """
    n_obj = band_offsets.shape[0]
    n_bands = band_offsets.shape[1] - 1
    vmin = np.full((n_obj, n_bands), np.nan)
    vmean = np.full((n_obj, n_bands), np.nan)
    for i in numba.prange(n_obj):
        for b in range(n_bands):
            s, e = band_offsets[i, b], band_offsets[i, b + 1]
            if e > s:
                lo = np.inf
                tot = 0.0
                for j in range(s, e):
                    v = values[j]
                    tot += v
                    if v < lo:
                        lo = v
                vmin[i, b] = lo
                vmean[i, b] = tot / (e - s)
    return vmin, vmean


def _band_index(lc: PackedLightCurves, band: int) -> int:
    if band not in lc.bands:
        raise ValueError(f"band {band} is not packed (packed bands: {lc.bands})")
    return lc.bands.index(band)


class ColorFamily(FeatureFamily):
    """``g-r_max``, ``g-r_max_corr``, ``g-r_mean``, ``g-r_mean_corr`` (4 multiband).

    ``_max`` is the difference of the band minima (brightest points), ``_mean`` of the band means;
    the plain versions use the raw ``magpsf``, the ``_corr`` versions ``magpsf_ml``. As in ALeRCE, a
    ``_corr`` value equal to its plain value (an uncorrected object) is NaN. NaN when g or r has no
    detection.
    """

    required = ("mag", "mag_raw")

    def __init__(self, blue: int = 1, red: int = 2):
        self.blue, self.red = blue, red

    @property
    def names(self) -> list[str]:
        return list(COLOR_NAMES)

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        g, r = _band_index(lc, self.blue), _band_index(lc, self.red)
        raw_min, raw_mean = band_min_mean(lc.mag_raw, lc.band_offsets)
        ml_min, ml_mean = band_min_mean(lc.mag, lc.band_offsets)
        gr_max = raw_min[:, g] - raw_min[:, r]
        gr_mean = raw_mean[:, g] - raw_mean[:, r]
        gr_max_corr = ml_min[:, g] - ml_min[:, r]
        gr_mean_corr = ml_mean[:, g] - ml_mean[:, r]
        gr_max_corr = np.where(gr_max_corr == gr_max, np.nan, gr_max_corr)
        gr_mean_corr = np.where(gr_mean_corr == gr_mean, np.nan, gr_mean_corr)
        return np.column_stack([gr_max, gr_max_corr, gr_mean, gr_mean_corr])


class WiseColorFamily(FeatureFamily):
    """AllWISE colors ``W1-W2, W2-W3, g-W2, g-W3, r-W2, r-W3`` (6 multiband).

    ``g`` and ``r`` are the mean ``magpsf_ml`` per band; W1, W2, W3 are the AllWISE Vega magnitudes
    read from the metadata columns ``W1mag, W2mag, W3mag`` (from the cross-match). Features are NaN
    when those columns are absent or null (no match), or the band has no detection.
    """

    required = ("mag", "metadata")

    def __init__(self, blue: int = 1, red: int = 2, columns=WISE_COLUMNS):
        self.blue, self.red = blue, red
        self.columns = tuple(columns)

    @property
    def names(self) -> list[str]:
        return list(WISE_NAMES)

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        n = len(lc)
        meta = lc.metadata
        w = []
        for col in self.columns:
            if meta is not None and col in meta.columns and len(meta) == n:
                w.append(meta[col].to_numpy(dtype=np.float64, na_value=np.nan))
            else:
                w.append(np.full(n, np.nan))
        w1, w2, w3 = w
        _, ml_mean = band_min_mean(lc.mag, lc.band_offsets)
        g = ml_mean[:, _band_index(lc, self.blue)]
        r = ml_mean[:, _band_index(lc, self.red)]
        return np.column_stack([w1 - w2, w2 - w3, g - w2, g - w3, r - w2, r - w3])
