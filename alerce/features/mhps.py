"""Mexican-hat power-spectrum features (MHPS, reference 2.2b; Arévalo et al. 2012).

For a band with magnitudes m, errors σ and times t (all cast to float32, as ALeRCE's Cython
wrapper does), the flux F = 10^(0.4 (mag0 - m)) minus its mean is smoothed at one timescale T with
two Gaussians, σ1 = 0.225 T / sqrt(1 + ε) and σ2 = (1 + ε) σ1, over a window ±6 max(σ1, dt)
(kernels normalized numerically on 1000 steps). The same smoothing of a unit mask divides the
result, and points with ≤ 3 neighbours within 2/3 of the window are invalid. The filtered
variance Ik² = mean(I²) / normf / μ² (μ the mean flux) minus the photometric-noise term PN gives

* ``MHPS_low`` = Ik²(t1) − PN,
* ``MHPS_high`` = Ik²(t2) − PN when that is positive (``MHPS_PN_flag`` = 0), else the
  unsubtracted Ik²(t2) (``MHPS_PN_flag`` = 1),
* ``MHPS_ratio`` = low / high and ``MHPS_non_zero`` = number of valid points at t2.

The arithmetic reproduces the reference C code's float32/double mix (float32 storage and
accumulators, double exponentials with its constant E = 2.718281828). The only algorithmic change
is that the convolution visits only the points inside the window (the C code loops over all pairs
and skips those outside), which gives the same sums in the same order in O(N·window).

Defaults are ALeRCE's: t1 = 100 d, t2 = 10 d, mag0 = 19, ε = 1 and dt = 5 d (quirk 11 of the
reference: the extractor stores dt = 3 but never passes it). NaN rules: a band without detections
gives NaN for all five; with one to three points ``MHPS_non_zero`` is 0, ``MHPS_PN_flag`` is 1 and
the three powers are NaN (0/0), as in ALeRCE; when ``MHPS_high`` is exactly 0 ALeRCE's division
raises and all five are NaN. Infinite values are reported as NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names
from alerce.features.turbofats import band_index_map

__all__ = ["MHPSFamily", "MHPS_FEATURES", "mhps_band"]

#: Feature names of one band, in ALeRCE's order.
MHPS_FEATURES: tuple[str, ...] = ("MHPS_ratio", "MHPS_low", "MHPS_high", "MHPS_non_zero",
                                  "MHPS_PN_flag")

_LN_E = math.log(2.718281828)  # the reference C code's constant E, used as pow(E, x)
_F32 = np.float32


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _pow_e(x: float) -> float:
    return math.exp(x * _LN_E)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _kernel_norms(c1, c2, dtmin):
    """Window and numerical kernel normalizations of the reference ``_conv`` (float32 emulation).

    Returns ``(mn, mx, norm1, norm2, normf)``; they depend only on the widths, so they are computed
    once per timescale and shared by every light curve.
    """
    mn = _F32(-6.0 * np.float64(c1))
    mx = _F32(6.0 * np.float64(c1))
    if np.float64(mx) < 6.0 * np.float64(dtmin):
        mn = _F32(-6.0 * np.float64(dtmin))
        mx = _F32(6.0 * np.float64(dtmin))
    dt1 = _F32(np.float64(_F32(mx - mn)) / 1000.0)
    two_c1 = _F32(_F32(_F32(2.0) * c1) * c1)
    two_c2 = _F32(_F32(_F32(2.0) * c2) * c2)
    norm1 = _F32(0.0)
    norm2 = _F32(0.0)
    t = mn
    while t <= mx:
        tt = _F32(-t * t)
        norm1 = _F32(np.float64(norm1) + _pow_e(np.float64(_F32(tt / two_c1))))
        norm2 = _F32(np.float64(norm2) + _pow_e(np.float64(_F32(tt / two_c2))))
        t = _F32(t + dt1)
    norm1 = _F32(norm1 * dt1)
    norm2 = _F32(norm2 * dt1)
    normf = _F32(0.0)
    t = mn
    while t <= mx:
        tt = _F32(-t * t)
        g = (_pow_e(np.float64(_F32(tt / two_c1))) / np.float64(norm1)
             - _pow_e(np.float64(_F32(tt / two_c2))) / np.float64(norm2))
        normf = _F32(np.float64(normf) + g * g)
        t = _F32(t + dt1)
    normf = _F32(normf * dt1)
    return mn, mx, norm1, norm2, normf


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _conv(a, time, mask, c1, c2, mn, mx, norm1, norm2, b1, b2):
    """Gaussian smoothing of ``a`` at widths c1, c2 over the window (mn, mx) (float32 emulation)."""
    n = a.shape[0]
    two_c1 = _F32(_F32(_F32(2.0) * c1) * c1)
    two_c2 = _F32(_F32(_F32(2.0) * c2) * c2)
    lo23 = np.float64(mn) / 3.0 * 2.0
    hi23 = np.float64(mx) / 3.0 * 2.0
    n1 = np.float64(norm1)
    n2 = np.float64(norm2)
    start = 0
    for ci in range(n):
        acc1 = _F32(0.0)
        acc2 = _F32(0.0)
        k = 0
        # times are sorted: skip the points left of the window once and for all
        while start < n and not (_F32(time[start] - time[ci]) > mn):
            start += 1
        for cj in range(start, n):
            d = _F32(time[cj] - time[ci])
            if not (d < mx):
                break
            if d > mn and mask[cj] > 0.0:
                dd = _F32(-d * d)
                acc1 = _F32(np.float64(acc1)
                            + np.float64(a[cj]) * _pow_e(np.float64(_F32(dd / two_c1))) / n1)
                acc2 = _F32(np.float64(acc2)
                            + np.float64(a[cj]) * _pow_e(np.float64(_F32(dd / two_c2))) / n2)
                if np.float64(d) >= lo23 and np.float64(d) <= hi23:
                    k += 1
        acc1 = _F32(acc1 * mask[ci])
        acc2 = _F32(acc2 * mask[ci])
        if k <= 3:
            acc1 = _F32(-1.0)
            acc2 = _F32(-1.0)
        b1[ci] = acc1
        b2[ci] = acc2


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _sigmas(t_scale, epsilon):
    kr = _F32(1.0 / np.float64(t_scale))
    s1 = _F32(0.225 / np.float64(kr) / math.sqrt(1.0 + np.float64(epsilon)))
    s2 = _F32((1.0 + np.float64(epsilon)) * np.float64(s1))
    return s1, s2


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _timescale(t_scale, epsilon, dt):
    s1, s2 = _sigmas(_F32(t_scale), _F32(epsilon))
    mn, mx, n1, n2, nf = _kernel_norms(s1, s2, _F32(dt))
    return s1, s2, mn, mx, n1, n2, nf


@numba.njit(nogil=True, cache=True, error_model="numpy")
def mhps_band(mag, err, time, t1, t2, dt, mag0, epsilon, out):
    """MHPS of one time-sorted band; writes (ratio, low, high, non_zero, PN_flag) into ``out``."""
    _mhps_band(mag, err, time, mag0, _timescale(t1, epsilon, dt), _timescale(t2, epsilon, dt), out)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _mhps_band(mag, err, time, mag0, low_scale, high_scale, out):
    n = mag.shape[0]
    m32 = np.empty(n, dtype=np.float32)
    e32 = np.empty(n, dtype=np.float32)
    t32 = np.empty(n, dtype=np.float32)
    flux = np.empty(n, dtype=np.float32)
    mask = np.ones(n, dtype=np.float32)
    mag0_32 = _F32(mag0)
    total = 0.0
    for i in range(n):
        m32[i] = _F32(mag[i])
        e32[i] = _F32(err[i])
        t32[i] = _F32(time[i])
        expo = _F32(_F32(-m32[i] + mag0_32) * _F32(0.4))
        flux[i] = _F32(10.0 ** np.float64(expo))
        total += np.float64(flux[i])
    mean = _F32(total / n)
    for i in range(n):
        flux[i] = _F32(flux[i] - mean)
    mean2 = _F32(mean * mean)

    rate1 = np.empty(n, dtype=np.float32)
    rate2 = np.empty(n, dtype=np.float32)
    mask1 = np.empty(n, dtype=np.float32)
    mask2 = np.empty(n, dtype=np.float32)

    # low frequency (t1) and the photometric-noise term
    s1, s2, mn, mx, n1, n2, norm = low_scale
    _conv(mask, t32, mask, s1, s2, mn, mx, n1, n2, mask1, mask2)
    _conv(flux, t32, mask, s1, s2, mn, mx, n1, n2, rate1, rate2)
    ik2 = _F32(0.0)
    pn = _F32(0.0)
    nonzero = 0
    ln10 = math.log(10.0)
    for k in range(n):
        if mask1[k] > 0.0:
            ik = _F32(_F32(rate1[k] / mask1[k]) - _F32(rate2[k] / mask2[k]))
            ik2 = _F32(ik2 + _F32(ik * ik))
            nonzero += 1
            fe = _F32(ln10 * 10.0 ** (-0.4 * np.float64(_F32(m32[k] - mag0_32)))
                      * 0.4 * np.float64(e32[k]))
            pn = _F32(pn + fe)
    nz = _F32(nonzero)
    ik2 = _F32(ik2 / nz) if nonzero > 0 else _F32(np.nan)
    ik2 = _F32(ik2 / norm)
    ik2 = _F32(ik2 / mean2)
    pn = _F32(pn / nz) if nonzero > 0 else _F32(np.nan)
    pn = _F32(_F32(pn * pn) / mean2)
    low = _F32(ik2 - pn)

    # high frequency (t2)
    s1, s2, mn, mx, n1, n2, norm = high_scale
    _conv(flux, t32, mask, s1, s2, mn, mx, n1, n2, rate1, rate2)
    _conv(mask, t32, mask, s1, s2, mn, mx, n1, n2, mask1, mask2)
    ik2 = _F32(0.0)
    nonzero = 0
    for k in range(n):
        if mask1[k] > 0.0:
            ik = _F32(_F32(rate1[k] / mask1[k]) - _F32(rate2[k] / mask2[k]))
            ik2 = _F32(ik2 + _F32(ik * ik))
            nonzero += 1
    ik2 = _F32(ik2 / _F32(nonzero)) if nonzero > 0 else _F32(np.nan)
    ik2 = _F32(ik2 / norm)
    ik2 = _F32(ik2 / mean2)
    if ik2 > pn:
        high = _F32(ik2 - pn)
        flag = 0.0
    else:
        high = ik2
        flag = 1.0
    if high == 0.0:
        return  # ALeRCE's ratio raises ZeroDivisionError: all five stay NaN
    out[0] = np.float64(_F32(low / high))
    out[1] = np.float64(low)
    out[2] = np.float64(high)
    out[3] = float(nonzero)
    out[4] = flag
    for j in range(3):
        if not math.isfinite(out[j]):
            out[j] = np.nan


@numba.njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def _mhps_kernel(time, mag, err, band_offsets, band_pos, t1, t2, dt, mag0, epsilon):
    n_obj = band_offsets.shape[0]
    nb = band_pos.shape[0]
    out = np.full((n_obj, nb * 5), np.nan)
    low_scale = _timescale(t1, epsilon, dt)
    high_scale = _timescale(t2, epsilon, dt)
    for task in numba.prange(n_obj * nb):
        i = task // nb
        b = task % nb
        p = band_pos[b]
        if p < 0:
            continue
        lo = band_offsets[i, p]
        hi = band_offsets[i, p + 1]
        if hi - lo < 1:
            continue
        _mhps_band(mag[lo:hi], err[lo:hi], time[lo:hi], mag0, low_scale, high_scale,
                   out[i, 5 * b:5 * b + 5])
    return out


class MHPSFamily(FeatureFamily):
    """MHPS_ratio, MHPS_low, MHPS_high, MHPS_non_zero, MHPS_PN_flag per band.

    Parameters
    ----------
    t1, t2 : float
        Low- and high-frequency timescales (days), ALeRCE 100 and 10.
    dt : float
        Minimum half-window scale (days): ALeRCE's effective value 5 (reference quirk 11).
    mag0, epsilon : float
        Flux zero point and the Mexican-hat width ratio parameter (19 and 1).
    bands : sequence of int
        Band codes whose features are produced, default g and r.
    """

    required = ("time", "mag", "err")
    band_local = True

    def __init__(self, t1: float = 100.0, t2: float = 10.0, dt: float = 5.0, mag0: float = 19.0,
                 epsilon: float = 1.0, bands: Sequence[int] = BANDS) -> None:
        self.t1 = float(t1)
        self.t2 = float(t2)
        self.dt = float(dt)
        self.mag0 = float(mag0)
        self.epsilon = float(epsilon)
        self.bands = tuple(int(b) for b in bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(MHPS_FEATURES, self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Return ``(len(lc), 5 * len(bands))`` float64 features."""
        return _mhps_kernel(
            lc.column("time"),
            lc.column("mag"),
            lc.column("err"),
            lc.column("band_offsets"),
            band_index_map(lc.bands, self.bands),
            self.t1, self.t2, self.dt, self.mag0, self.epsilon,
        )
