"""Supernova detection and non-detection features (reference section 2.2d, 19 per band).

ALeRCE's ``SupernovaeDetectionAndNonDetectionFeatureExtractor``: statistics of the detections of
one band (``magpsf_ml``) and of the band's non-detections before / after its first detection.
"""

from __future__ import annotations

import numba
import numpy as np

from alerce.features.base import FeatureFamily, PackedLightCurves, per_band_names

#: Base names in output order (a ``_<fid>`` suffix is appended per band).
SN_BASE_NAMES: tuple[str, ...] = (
    "delta_mag_fid", "delta_mjd_fid", "first_mag", "mean_mag", "min_mag",
    "n_det", "n_neg", "n_pos", "positive_fraction",
    "n_non_det_before_fid", "max_diffmaglim_before_fid", "median_diffmaglim_before_fid",
    "last_diffmaglim_before_fid", "last_mjd_before_fid", "dmag_non_det_fid", "dmag_first_det_fid",
    "n_non_det_after_fid", "max_diffmaglim_after_fid", "median_diffmaglim_after_fid",
)
_K = len(SN_BASE_NAMES)


@numba.njit(nogil=True, cache=True)
def _sn_band(time, mag, isdiffpos, nd_time, nd_lim, out):
    """Fill ``out`` (19 values) for one band; ``out`` is pre-filled with NaN."""
    n = len(time)
    if n == 0:
        return
    mmin = np.inf
    mmax = -np.inf
    total = 0.0
    n_pos = 0
    for j in range(n):
        m = mag[j]
        total += m
        if m < mmin:
            mmin = m
        if m > mmax:
            mmax = m
        if isdiffpos[j] > 0:
            n_pos += 1
    t_first = time[0]
    first_mag = mag[0]
    out[0] = mmax - mmin
    out[1] = time[n - 1] - t_first
    out[2] = first_mag
    out[3] = total / n
    out[4] = mmin
    out[5] = n
    out[6] = n - n_pos
    out[7] = n_pos
    out[8] = n_pos / n
    # non-detections are sorted by time: "before" is the prefix with nd_time < t_first
    n_nd = len(nd_time)
    n_before = 0
    while n_before < n_nd and nd_time[n_before] < t_first:
        n_before += 1
    out[9] = n_before
    if n_before > 0:
        before = nd_lim[:n_before]
        med = np.median(before)
        out[10] = np.max(before)
        out[11] = med
        out[12] = nd_lim[n_before - 1]
        out[13] = nd_time[n_before - 1]
        out[14] = med - mmin
        out[15] = nd_lim[n_before - 1] - first_mag
    n_after = n_nd - n_before
    out[16] = n_after
    if n_after > 0:
        after = nd_lim[n_before:]
        out[17] = np.max(after)
        out[18] = np.median(after)


@numba.njit(nogil=True, cache=True, parallel=True)
def sn_kernel(time, mag, isdiffpos, band_offsets, nd_time, nd_lim, nd_band_offsets):
    """SN features of every object and band: array ``(n_objects, n_bands * 19)``, band-major."""
    n_obj = band_offsets.shape[0]
    n_bands = band_offsets.shape[1] - 1
    out = np.full((n_obj, n_bands * _K), np.nan)
    for i in numba.prange(n_obj):
        for b in range(n_bands):
            s, e = band_offsets[i, b], band_offsets[i, b + 1]
            ns, ne = nd_band_offsets[i, b], nd_band_offsets[i, b + 1]
            _sn_band(time[s:e], mag[s:e], isdiffpos[s:e], nd_time[ns:ne], nd_lim[ns:ne],
                     out[i, b * _K:(b + 1) * _K])
    return out


class SNDetectionFamily(FeatureFamily):
    """Supernova detection + non-detection features (19 per band).

    A band without detections gives NaN for all 19 features of that band. With detections but no
    non-detection before (after) the first detection, ``n_non_det_before_fid``
    (``n_non_det_after_fid``) is 0 and the other before (after) features are NaN.
    """

    required = ("time", "mag", "isdiffpos", "nd_time", "nd_diffmaglim")

    def __init__(self, bands=(1, 2)):
        self.bands = tuple(bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(SN_BASE_NAMES, self.bands)

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        if len(lc) == 0:
            return np.empty((0, len(self.names)))
        idx = [lc.bands.index(b) for b in self.bands]
        out = sn_kernel(lc.time, lc.mag, lc.isdiffpos, lc.band_offsets, lc.nd_time,
                        lc.nd_diffmaglim, lc.nd_band_offsets)
        cols = np.concatenate([np.arange(b * _K, (b + 1) * _K) for b in idx])
        return out[:, cols]
