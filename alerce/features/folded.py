"""Folded Kim features ``Psi_CS`` and ``Psi_eta`` per band (reference section 2.2h).

ALeRCE's ``FoldedKimExtractor`` (after Kim et al., UPSILoN): fold the band's detections at twice
``Multiband_period`` using absolute MJD, ``phase = mod(t, 2P) / (2P)``, order the magnitudes by
phase and compute

* ``Psi_CS``: range of the cumulative sum ``cumsum(m - mean) / (N * sigma)`` (``sigma`` ddof=0);
* ``Psi_eta``: ``sum((m[i+1] - m[i])**2) / ((N - 1) * sigma**2)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names

__all__ = ["FoldedKimFamily", "folded_kim"]


@numba.njit(nogil=True, cache=True)
def _folded_kim_band(time, mag, lo, hi, period, out):
    """Write ``(Psi_CS, Psi_eta)`` of one band into ``out[0:2]`` (left NaN when undefined)."""
    n = 0
    for i in range(lo, hi):
        if math.isfinite(time[i]) and math.isfinite(mag[i]):
            n += 1
    if n < 2 or not (math.isfinite(period) and period > 0.0):
        return
    two_p = 2.0 * period
    phase = np.empty(n)
    m = np.empty(n)
    j = 0
    for i in range(lo, hi):
        if math.isfinite(time[i]) and math.isfinite(mag[i]):
            x = time[i] % two_p  # numpy.mod semantics for a positive divisor
            phase[j] = x / two_p
            m[j] = mag[i]
            j += 1
    order = np.argsort(phase, kind="mergesort")
    sm = m[order]
    mean = sm.sum() / n
    var = 0.0
    for i in range(n):
        var += (sm[i] - mean) ** 2
    var /= n
    if not var > 0.0:
        return
    sigma = math.sqrt(var)
    s = 0.0
    smax = -np.inf
    smin = np.inf
    for i in range(n):
        s += (sm[i] - mean) / (n * sigma)
        if s > smax:
            smax = s
        if s < smin:
            smin = s
    eta = 0.0
    for i in range(n - 1):
        eta += (sm[i + 1] - sm[i]) ** 2
    out[0] = smax - smin
    out[1] = eta / ((n - 1) * var)


@numba.njit(nogil=True, cache=True, parallel=True)
def _folded_kernel(time, mag, band_offsets, periods):
    n = band_offsets.shape[0]
    nb = band_offsets.shape[1] - 1
    out = np.full((n, 2 * nb), np.nan)
    for i in numba.prange(n):
        for b in range(nb):
            _folded_kim_band(
                time, mag, band_offsets[i, b], band_offsets[i, b + 1], periods[i],
                out[i, 2 * b : 2 * b + 2],
            )
    return out


def folded_kim(time: np.ndarray, mag: np.ndarray, period: float) -> tuple[float, float]:
    """``(Psi_CS, Psi_eta)`` of one band folded at ``2 * period`` (NaN when undefined)."""
    time = np.ascontiguousarray(time, dtype=np.float64)
    mag = np.ascontiguousarray(mag, dtype=np.float64)
    out = np.full(2, np.nan)
    _folded_kim_band(time, mag, 0, time.size, float(period), out)
    return float(out[0]), float(out[1])


class FoldedKimFamily(FeatureFamily):
    """``Psi_CS_b`` and ``Psi_eta_b`` folded at ``2 * Multiband_period``.

    Parameters
    ----------
    bands : tuple of int
        Band codes, in the order of ``PackedLightCurves.bands``.

    Notes
    -----
    NaN when the band has fewer than 2 finite points, constant magnitudes, or when
    ``Multiband_period`` is NaN (ALeRCE would then compute the unfolded, time-ordered values:
    a quirk we do not replicate).
    """

    required = ("time", "mag")
    depends = ("Multiband_period",)

    def __init__(self, bands: tuple[int, ...] = BANDS) -> None:
        self.bands = tuple(int(b) for b in bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(["Psi_CS", "Psi_eta"], self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Folded Kim features, shape ``(len(lc), 2 * len(bands))``."""
        if tuple(lc.bands) != self.bands:
            raise ValueError(f"FoldedKimFamily built for bands {self.bands}, got {tuple(lc.bands)}")
        if "Multiband_period" not in context:
            raise KeyError("FoldedKimFamily needs 'Multiband_period' in context (PeriodFamily)")
        periods = np.ascontiguousarray(context["Multiband_period"], dtype=np.float64)
        if periods.shape != (len(lc),):
            raise ValueError(f"Multiband_period has shape {periods.shape}, expected ({len(lc)},)")
        if len(lc) == 0:
            return np.empty((0, len(self.names)))
        return _folded_kernel(
            lc.column("time"),
            lc.column("mag"),
            lc.column("band_offsets"),
            periods,
        )
