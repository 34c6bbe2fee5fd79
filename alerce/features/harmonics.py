"""Harmonic fit features per band (reference section 2.2i, ALeRCE ``HarmonicsExtractor``, n = 7).

At ``f = 1 / Multiband_period`` and absolute MJD, fit
``m(t) = c0 + sum_k a_k cos(2 pi k f t) + b_k sin(2 pi k f t)`` (k = 1..7) by weighted least squares
with row weights ``1 / (err + 0.01)``, solved with a pseudo-inverse (``pinv``, rcond 1e-15, so
light curves with fewer than 15 points get the minimum-norm solution, as in ALeRCE). Outputs:

* ``Harmonics_mag_k = sqrt(a_k**2 + b_k**2)`` for k = 1..7;
* ``Harmonics_phase_k = (phi_k - k * phi_1) mod 2 pi`` for k = 2..7 with ``phi_k = atan2(b_k, a_k)``;
* ``Harmonics_mse``: unweighted mean squared residual.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names

__all__ = ["HarmonicsFamily", "harmonics_fit", "harmonics_base_names"]


def harmonics_base_names(n_harmonics: int = 7) -> list[str]:
    """``Harmonics_mag_1..n``, ``Harmonics_phase_2..n``, ``Harmonics_mse`` (ALeRCE order)."""
    names = [f"Harmonics_mag_{k}" for k in range(1, n_harmonics + 1)]
    names += [f"Harmonics_phase_{k}" for k in range(2, n_harmonics + 1)]
    return names + ["Harmonics_mse"]


@numba.njit(nogil=True, cache=True)
def _householder_r(a, b):
    """``(R, (Q^T b)[:k])`` of the Householder QR of the ``n x k`` matrix ``a`` (``n >= k``)."""
    n, k = a.shape
    m = np.empty((n, k + 1))
    m[:, :k] = a
    m[:, k] = b
    v = np.empty(n)
    for j in range(k):
        norm = 0.0
        for i in range(j, n):
            norm += m[i, j] * m[i, j]
        norm = math.sqrt(norm)
        if norm == 0.0:
            continue
        alpha = -norm if m[j, j] >= 0.0 else norm
        vn = 0.0
        for i in range(j, n):
            v[i] = m[i, j]
        v[j] -= alpha
        for i in range(j, n):
            vn += v[i] * v[i]
        if vn == 0.0:
            continue
        for c in range(j, k + 1):
            dot = 0.0
            for i in range(j, n):
                dot += v[i] * m[i, c]
            f = 2.0 * dot / vn
            for i in range(j, n):
                m[i, c] -= f * v[i]
    r = np.zeros((k, k))
    for i in range(k):
        for c in range(i, k):
            r[i, c] = m[i, c]
    return r, m[:k, k].copy()


@numba.njit(nogil=True, cache=True)
def _harmonics_band(time, mag, err, lo, hi, period, n_harm, out):
    """Write the ``2 * n_harm`` harmonic features of one band into ``out`` (left NaN if undefined)."""
    n = 0
    for i in range(lo, hi):
        if math.isfinite(time[i]) and math.isfinite(mag[i]) and math.isfinite(err[i]):
            n += 1
    if n < 1 or not (math.isfinite(period) and period > 0.0):
        return
    best_freq = 1.0 / period
    ncol = 1 + 2 * n_harm
    omega = np.empty((n, ncol))
    wa = np.empty((n, ncol))
    wb = np.empty(n)
    m = np.empty(n)
    j = 0
    for i in range(lo, hi):
        if not (math.isfinite(time[i]) and math.isfinite(mag[i]) and math.isfinite(err[i])):
            continue
        inv = 1.0 / (err[i] + 0.01)
        omega[j, 0] = 1.0
        for k in range(1, n_harm + 1):
            arg = (2.0 * np.pi * best_freq * k) * time[i]
            omega[j, k] = math.cos(arg)
            omega[j, n_harm + k] = math.sin(arg)
        for c in range(ncol):
            wa[j, c] = inv * omega[j, c]
        m[j] = mag[i]
        wb[j] = mag[i] * inv
        j += 1
    if not (np.all(np.isfinite(wa)) and np.all(np.isfinite(wb))):
        return
    if n > ncol:
        # pinv(Q R) = pinv(R) Q^T for Q with orthonormal columns; R has A's singular values, so
        # the rcond cut-off is the same, at O(N k^2) and without BLAS threads on long curves.
        r, qtb = _householder_r(wa, wb)
        coeffs = np.linalg.pinv(r, rcond=1e-15) @ qtb
    else:
        coeffs = np.linalg.pinv(wa, rcond=1e-15) @ wb
    mse = 0.0
    for i in range(n):
        fit = 0.0
        for c in range(ncol):
            fit += omega[i, c] * coeffs[c]
        mse += (fit - m[i]) ** 2
    mse /= n
    phi1 = math.atan2(coeffs[n_harm + 1], coeffs[1])
    for k in range(1, n_harm + 1):
        a = coeffs[k]
        b = coeffs[n_harm + k]
        out[k - 1] = math.sqrt(a * a + b * b)
        if k >= 2:
            phi = math.atan2(b, a) - phi1 * k
            out[n_harm + k - 2] = phi % (2.0 * np.pi)
    out[2 * n_harm - 1] = mse


@numba.njit(nogil=True, cache=True, parallel=True)
def _harmonics_kernel(time, mag, err, band_offsets, periods, n_harm):
    n = band_offsets.shape[0]
    nb = band_offsets.shape[1] - 1
    k = 2 * n_harm
    out = np.full((n, k * nb), np.nan)
    for i in numba.prange(n):
        for b in range(nb):
            _harmonics_band(
                time, mag, err, band_offsets[i, b], band_offsets[i, b + 1], periods[i], n_harm,
                out[i, k * b : k * (b + 1)],
            )
    return out


def harmonics_fit(
    time: np.ndarray, mag: np.ndarray, err: np.ndarray, period: float, n_harmonics: int = 7
) -> np.ndarray:
    """Harmonic features of one band, in :func:`harmonics_base_names` order (NaN if undefined)."""
    time = np.ascontiguousarray(time, dtype=np.float64)
    mag = np.ascontiguousarray(mag, dtype=np.float64)
    err = np.ascontiguousarray(err, dtype=np.float64)
    out = np.full(2 * n_harmonics, np.nan)
    _harmonics_band(time, mag, err, 0, time.size, float(period), int(n_harmonics), out)
    return out


class HarmonicsFamily(FeatureFamily):
    """``Harmonics_mag_k_b``, ``Harmonics_phase_k_b`` and ``Harmonics_mse_b`` at Multiband_period.

    Parameters
    ----------
    n_harmonics : int
        Number of harmonics (ALeRCE: 7, giving 14 features per band).
    bands : tuple of int
        Band codes, in the order of ``PackedLightCurves.bands``.

    Notes
    -----
    NaN for a band without finite points or when ``Multiband_period`` is NaN (ALeRCE catches the
    exception and returns NaN). Points with non-finite time, magnitude or error are ignored.
    """

    required = ("time", "mag", "err")
    depends = ("Multiband_period",)

    def __init__(self, n_harmonics: int = 7, bands: tuple[int, ...] = BANDS) -> None:
        if n_harmonics < 1:
            raise ValueError("HarmonicsFamily: n_harmonics must be >= 1")
        self.n_harmonics = int(n_harmonics)
        self.bands = tuple(int(b) for b in bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(harmonics_base_names(self.n_harmonics), self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Harmonic features, shape ``(len(lc), 2 * n_harmonics * len(bands))``."""
        if tuple(lc.bands) != self.bands:
            raise ValueError(f"HarmonicsFamily built for bands {self.bands}, got {tuple(lc.bands)}")
        if "Multiband_period" not in context:
            raise KeyError("HarmonicsFamily needs 'Multiband_period' in context (PeriodFamily)")
        periods = np.ascontiguousarray(context["Multiband_period"], dtype=np.float64)
        if periods.shape != (len(lc),):
            raise ValueError(f"Multiband_period has shape {periods.shape}, expected ({len(lc)},)")
        if len(lc) == 0:
            return np.empty((0, len(self.names)))
        return _harmonics_kernel(
            lc.column("time"),
            lc.column("mag"),
            lc.column("err"),
            lc.column("band_offsets"),
            periods,
            self.n_harmonics,
        )
