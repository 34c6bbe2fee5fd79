"""Multiband MHAOV periodogram, period features and power rates (reference sections 2.2f and 2.2g).

This reproduces ALeRCE's production 2021 ``PeriodExtractor`` + ``PowerRateExtractor``
(``lc_classifier`` 1.2.1-P over P4J ``MultiBandPeriodogram(method='MHAOV')``):

* per band (only bands with more than 5 detections), the magnitudes are centred on P4J's
  ``robust_loc`` (interpolated weighted median, weights ``1/err**2`` normalized);
* the multiharmonic analysis of variance of Schwarzenberg-Czerny (1996) with one harmonic gives
  ``aov_b(f)``, the weighted (``1/err**2``) regression sum of squares of the fit of
  ``1, cos 2 pi f t, sin 2 pi f t``, and ``wvar_b``, the weighted sum of squares about the weighted
  mean. P4J obtains ``aov_b`` by orthogonal (Szego) projection on the unit circle; the projection
  spans the same space, so we compute it as a centred 2x2 Gram-Schmidt on weighted sums, which is
  the same number in exact arithmetic;
* multiband ``P(f) = sum_b d2_b * sum_b aov_b / (d1 * (sum_b wvar_b - sum_b aov_b))`` with
  ``d1 = 2`` and ``d2_b = N_b - 3``; per band ``(d2_b / d1) * aov_b / (wvar_b - aov_b)``;
* grid ``np.arange(1e-3, 20, 1e-3, dtype=float32)``; the 10 highest local maxima are fine-tuned
  on ``np.arange(f - 1e-3, f + 1e-3, 1e-4, dtype=float32)`` (20 or 21 points, emulated bit for
  bit) and replaced when the fine maximum is higher.

Speed: the coarse grid is evaluated in one compiled loop per band. ``cos``/``sin`` of
``2 pi f_k t_i`` are advanced from one grid frequency to the next by a complex rotation (the float32
grid has only ~20 distinct steps, so the rotation factors are tabulated once per light curve) and
re-seeded exactly every :data:`~alerce.features.period_kernels.RESEED` frequencies. By default
(``precision="single"``) the rotated state and the point sums are float32, which doubles the SIMD
width (8 lanes on AVX2); the AoV algebra on the sums is float64 (``precision="double"`` keeps
everything in float64). The rotated state is ``sqrt(w) (cos, sin)`` so that every weighted sum
costs one fused multiply-add per point (10 floating-point operations per point and frequency,
rotation included); bands are padded with zero-weight points to a multiple of
:data:`~alerce.features.period_kernels._PAD` so the point loop has no scalar remainder, and the
kernels use ``error_model="numpy"`` so the per-frequency AoV algebra vectorizes (no division
checks). In single precision, bands of up to
:data:`~alerce.features.period_lanes._LANE_MAX_POINTS` points use a second kernel vectorized
across 8 consecutive frequencies instead of across points
(:func:`~alerce.features.period_lanes._band_aov_lanes`, no per-frequency horizontal
reductions). The post-processing scans the ~20 000-frequency arrays once for block maxima and
local maxima and then only visits the blocks that matter.
Objects run in parallel with ``numba.prange``.

Layout: this module holds the family, the grids and the per-object orchestration; the
point-vectorized and fine-tuning kernels and the shared kernel constants are in
:mod:`alerce.features.period_kernels`, the frequency-lane kernel in
:mod:`alerce.features.period_lanes` and the post-processing scans in
:mod:`alerce.features.period_scan`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves
from alerce.features.period_kernels import (  # noqa: F401  (RESEED: kept importable from here)
    RESEED,
    _band_aov_fine,
    _band_aov_grid,
    _fine_steps,
    _pad_band,
)
from alerce.features.period_lanes import _LANE_MAX_POINTS, _band_aov_lanes, _lane_plan
from alerce.features.period_scan import (
    _SCAN,
    _accumulate,
    _argmax_blocks,
    _block_max,
    _entropy_ppe,
    _nearest_patched,
    _patched,
    _power_rate_indices,
    _scan_asum,
    _top_values,
    _top_values_blocks,
)

__all__ = [
    "PeriodFamily",
    "frequency_grid",
    "finetune_grid",
    "robust_loc",
    "mhaov_periodogram",
    "POWER_RATE_FACTORS",
    "POWER_RATE_NAMES",
]

#: ``precision`` names and the zero that types the coarse-grid work arrays.
_PRECISIONS = {"single": np.float32(0.0), "double": np.float64(0.0)}

#: ``Power_rate_<k>`` factors and names, in ALeRCE's order.
POWER_RATE_FACTORS: tuple[float, ...] = (0.25, 1.0 / 3.0, 0.5, 2.0, 3.0, 4.0)
POWER_RATE_NAMES: tuple[str, ...] = (
    "Power_rate_1/4",
    "Power_rate_1/3",
    "Power_rate_1/2",
    "Power_rate_2",
    "Power_rate_3",
    "Power_rate_4",
)


def frequency_grid(fmin: float = 1e-3, fmax: float = 20.0, step: float = 1e-3) -> np.ndarray:
    """P4J's coarse grid ``np.arange(max(fmin, step), fmax, step, dtype=float32)`` as float64."""
    return np.arange(max(fmin, step), fmax, step, dtype=np.float32).astype(np.float64)


@numba.njit(nogil=True, cache=True)
def _finetune_grid(center: float, coarse_step: float, fine_step: float) -> np.ndarray:
    """Bit-exact emulation of ``np.arange(c - step, c + step, fine, dtype=float32)`` (numpy 2).

    ``c`` is a float32 grid value; numpy subtracts the Python float in float32, computes the length
    as ``ceil((stop - start) / fine)`` in float64 and fills ``start + i * delta`` in float32.
    """
    c = np.float32(center)
    cs = np.float32(coarse_step)
    fmin = np.float32(c - cs)
    fmax = np.float32(c + cs)
    n = int(math.ceil((np.float64(fmax) - np.float64(fmin)) / fine_step))
    out = np.empty(max(n, 0), dtype=np.float64)
    if n <= 0:
        return out
    b0 = fmin
    out[0] = np.float64(b0)
    if n > 1:
        b1 = np.float32(np.float64(fmin) + fine_step)
        delta = np.float32(b1 - b0)
        out[1] = np.float64(b1)
        for i in range(2, n):
            out[i] = np.float64(np.float32(b0 + np.float32(np.float32(i) * delta)))
    return out


def finetune_grid(center: float, coarse_step: float = 1e-3, fine_step: float = 1e-4) -> np.ndarray:
    """Fine grid P4J evaluates around a local maximum at ``center`` (float64 of float32 values)."""
    return _finetune_grid(float(center), float(coarse_step), float(fine_step))


@numba.njit(nogil=True, cache=True)
def _robust_loc(x: np.ndarray, w: np.ndarray) -> float:
    """P4J ``robust_loc``: interpolated weighted median (weights need not be normalized)."""
    n = x.size
    order = np.argsort(x)
    sx = x[order]
    sw = w[order]
    acum = np.cumsum(sw)
    total = acum[n - 1]
    norm = (acum - 0.5 * sw) / total
    q = np.searchsorted(norm, 0.5)
    if q == 0:
        return sx[0]
    if q >= n:
        return sx[n - 1]
    den = norm[q] - norm[q - 1]
    if not den > 0.0:
        return sx[q]
    a = (norm[q] - 0.5) / den
    b = (0.5 - norm[q - 1]) / den
    return sx[q - 1] * a + sx[q] * b


def robust_loc(x: np.ndarray, err: np.ndarray) -> float:
    """Weighted median of ``x`` with weights ``err**-2`` as P4J's ``robust_loc`` computes it."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    err = np.ascontiguousarray(err, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    return float(_robust_loc(x, err**-2.0))


# --------------------------------------------------------------------------------------------
# one object
# --------------------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, inline="always")
def _ratio(num, wvar, aov):
    """``num * aov / (wvar - aov)`` with the denominator floored (NaN when ``wvar`` is 0)."""
    if not wvar > 0.0:
        return np.nan
    den = wvar - aov
    floor = 1e-12 * wvar
    if den < floor:
        den = floor
    return num * aov / den


@numba.njit(nogil=True, cache=True)
def _prepare_band(time, mag, err, lo, hi, t_ref):
    """Finite points of one band: relative time, weights and weighted-centred weighted magnitudes."""
    cnt = 0
    for i in range(lo, hi):
        if (
            math.isfinite(time[i])
            and math.isfinite(mag[i])
            and math.isfinite(err[i])
            and err[i] > 0.0
        ):
            cnt += 1
    t = np.empty(cnt)
    y = np.empty(cnt)
    w = np.empty(cnt)
    j = 0
    for i in range(lo, hi):
        if (
            math.isfinite(time[i])
            and math.isfinite(mag[i])
            and math.isfinite(err[i])
            and err[i] > 0.0
        ):
            t[j] = time[i] - t_ref
            y[j] = mag[i]
            w[j] = 1.0 / (err[i] * err[i])
            j += 1
    return t, y, w


@numba.njit(nogil=True, cache=True)
def _center(y, w):
    """P4J centring: subtract robust_loc, then the weighted mean; returns (w*yc, wvar)."""
    n = y.size
    wy = np.empty(n)
    wvar = 0.0
    if n == 0:
        return wy, 0.0
    loc = _robust_loc(y, w)
    sw = 0.0
    sy = 0.0
    for i in range(n):
        sw += w[i]
        sy += w[i] * (y[i] - loc)
    wmean = sy / sw
    for i in range(n):
        yc = (y[i] - loc) - wmean
        wy[i] = w[i] * yc
        wvar += w[i] * yc * yc
    if not math.isfinite(wvar):
        wvar = np.nan
    return wy, wvar


@numba.njit(nogil=True, cache=True)
def _object_aov(time, mag, err, boff, freqs, step_ids, steps, plan, min_det, zero):
    """Per-band AoV of one object on the coarse grid.

    Returns ``(asum, aovs, ok, ts, ws, wys, wvars, d2s, bmax)``: ``asum[k] = sum_b aov_b(f_k)`` over
    the used bands, ``ok[b]`` marks bands used (at least ``min_det`` finite points and a finite
    weighted variance; the rows of ``aovs`` of other bands are not set). The multiband
    periodogram is ``(d2sum / 2) * asum / (wsum - asum)``, a monotone function of ``asum``, and
    each band's periodogram is monotone in ``aovs[b]``: maxima and orderings are therefore taken
    on the AoV sums and only the few reported values are transformed. ``bmax[1 + b, j]`` is the
    maximum of ``aovs[b]`` over the :data:`_SCAN` frequencies of block ``j`` (NaN never wins;
    ``bmax[0]`` is filled by :func:`_scan_asum`).
    """
    nb = boff.size - 1
    m = freqs.size
    t_ref = np.inf
    for b in range(nb):
        for i in range(boff[b], boff[b + 1]):
            if math.isfinite(time[i]) and time[i] < t_ref:
                t_ref = time[i]
    if not math.isfinite(t_ref):
        t_ref = 0.0
    aovs = np.empty((nb, m))
    asum = np.empty(m)
    bmax = np.empty((nb + 1, (m + _SCAN - 1) // _SCAN))
    ok = np.zeros(nb, dtype=np.bool_)
    wvars = np.zeros(nb)
    d2s = np.zeros(nb)
    ts = []
    ws = []
    wys = []
    for b in range(nb):
        t, y, w = _prepare_band(time, mag, err, boff[b], boff[b + 1], t_ref)
        wy, wvar = _center(y, w)
        ts.append(t)
        ws.append(w)
        wys.append(wy)
        if t.size < min_det or not math.isfinite(wvar):
            continue
        row = aovs[b]
        if plan[0].size > 0 and 0 < t.size <= _LANE_MAX_POINTS:
            _band_aov_lanes(t, w, wy, freqs, step_ids, steps, plan, row)
        else:
            tp, wp, wyp = _pad_band(t, w, wy)
            _band_aov_grid(tp, wp, wyp, freqs, step_ids, steps, row, zero)
        _accumulate(row, asum, bmax[1 + b], not ok.any())
        ok[b] = True
        wvars[b] = wvar
        d2s[b] = t.size - 3.0
    if not ok.any():
        asum[:] = 0.0
    return asum, aovs, ok, ts, ws, wys, wvars, d2s, bmax


@numba.njit(nogil=True, cache=True)
def _object_periodogram(time, mag, err, boff, freqs, step_ids, steps, plan, min_det, zero):
    """Coarse multiband and per-band periodograms of one object (NaN where undefined)."""
    asum, aovs, ok, _, _, _, wvars, d2s, _ = _object_aov(
        time, mag, err, boff, freqs, step_ids, steps, plan, min_det, zero
    )
    nb = boff.size - 1
    m = freqs.size
    pb = np.full((nb, m), np.nan)
    p = np.full(m, np.nan)
    d2sum = 0.0
    wsum = 0.0
    for b in range(nb):
        if ok[b]:
            d2sum += d2s[b]
            wsum += wvars[b]
            for k in range(m):
                pb[b, k] = _ratio(d2s[b] / 2.0, wvars[b], aovs[b, k])
    if ok.any():
        for k in range(m):
            p[k] = _ratio(d2sum / 2.0, wsum, asum[k])
    return p, pb, ok


@numba.njit(nogil=True, cache=True)
def _period_one(
    time, mag, err, boff, freqs, step_ids, steps, plan, min_det, n_local, coarse_step, fine_step,
    n_best, factors, zero, out,
):
    """All period features of one object into ``out`` (NaN already)."""
    nb = boff.size - 1
    asum, aovs, ok, ts, ws, wys, wvars, d2s, bmax = _object_aov(
        time, mag, err, boff, freqs, step_ids, steps, plan, min_det, zero
    )
    if not ok.any():
        return
    top, count, clean = _scan_asum(asum, bmax[0], n_local)
    if count < n_local:
        return  # P4J returns None and ALeRCE catches the TypeError: all NaN
    d2sum = 0.0
    wsum = 0.0
    for b in range(nb):
        if ok[b]:
            d2sum += d2s[b]
            wsum += wvars[b]
    num = d2sum / 2.0
    # fine-tuned grid entries: freq[chg_k[j]] = chg_f[j] (the coarse grid is not copied)
    chg_k = np.empty(top.size, dtype=np.int64)
    chg_f = np.empty(top.size)
    nchg = 0
    aov_f = np.zeros((nb, 32))
    a_f = np.zeros(32)
    nmax = 0
    for b in range(nb):
        nmax = max(nmax, ts[b].size)
    work = np.empty((8, nmax))
    for j in range(top.size):
        k = top[j]
        fine = _finetune_grid(freqs[k], coarse_step, fine_step)
        nf = fine.size
        if nf > a_f.size:
            aov_f = np.zeros((nb, nf))
            a_f = np.zeros(nf)
        a_f[:] = 0.0
        dvals, dids = _fine_steps(fine)
        if 2 + 2 * dvals.size > work.shape[0]:
            work = np.empty((2 + 2 * dvals.size, nmax))
        for b in range(nb):
            if ok[b]:
                _band_aov_fine(ts[b], ws[b], wys[b], fine, dvals, dids, aov_f[b, :nf], work)
                for q in range(nf):
                    a_f[q] += aov_f[b, q]
        best_q = 0
        for q in range(1, nf):
            if a_f[q] > a_f[best_q]:
                best_q = q
        # P is monotone in the AoV sum: comparing sums compares the periodogram values
        if nf > 0 and _ratio(num, wsum, a_f[best_q]) > _ratio(num, wsum, asum[k]):
            chg_k[nchg] = k
            chg_f[nchg] = fine[best_q]
            nchg += 1
            asum[k] = a_f[best_q]
            for b in range(nb):
                if ok[b]:
                    aovs[b, k] = aov_f[b, best_q]
    for j in range(nchg):
        blk = chg_k[j] // _SCAN
        _block_max(asum, bmax[0], blk)
        for b in range(nb):
            if ok[b]:
                _block_max(aovs[b], bmax[1 + b], blk)
    best_k = top[0]
    for j in range(1, top.size):
        if asum[top[j]] > asum[best_k]:
            best_k = top[j]
    period = 1.0 / _patched(freqs, chg_k, chg_f, nchg, best_k)
    out[0] = period
    if clean:
        top_a = _top_values_blocks(asum, bmax[0], n_best)
    else:
        top_a = _top_values(asum, n_best)
    for j in range(top_a.size):
        top_a[j] = _ratio(num, wsum, top_a[j])
    out[1] = _entropy_ppe(top_a, n_best)
    for b in range(nb):
        if not ok[b]:
            continue
        kb = _argmax_blocks(aovs[b], bmax[1 + b])
        pband = 1.0 / _patched(freqs, chg_k, chg_f, nchg, kb)
        out[2 + 2 * b] = pband
        out[3 + 2 * b] = abs(period - pband)
    # power rates: the coarse grid is increasing, so only fine-tuned entries can break the order
    m = freqs.size
    sorted_ok = True
    for j in range(nchg):
        k = chg_k[j]
        f = chg_f[j]
        if (k > 0 and f < _patched(freqs, chg_k, chg_f, nchg, k - 1)) or (
            k + 1 < m and _patched(freqs, chg_k, chg_f, nchg, k + 1) < f
        ):
            sorted_ok = False
    if sorted_ok:
        best = _argmax_blocks(asum, bmax[0])
        p_best = 1.0 / _patched(freqs, chg_k, chg_f, nchg, best)
        idx = np.empty(factors.size, dtype=np.int64)
        for j in range(factors.size):
            idx[j] = _nearest_patched(freqs, chg_k, chg_f, nchg, 1.0 / (p_best * factors[j]))
    else:
        freq = freqs.copy()
        for j in range(nchg):
            freq[chg_k[j]] = chg_f[j]
        best, idx = _power_rate_indices(freq, asum, factors)
    power = _ratio(num, wsum, asum[best])
    for j in range(factors.size):
        out[2 + 2 * nb + j] = _ratio(num, wsum, asum[idx[j]]) / power


@numba.njit(nogil=True, cache=True, parallel=True)
def _period_kernel(
    time, mag, err, band_offsets, freqs, step_ids, steps, plan, min_det, n_local, coarse_step,
    fine_step, n_best, factors, zero,
):
    n = band_offsets.shape[0]
    nb = band_offsets.shape[1] - 1
    out = np.full((n, 2 + 2 * nb + factors.size), np.nan)
    for i in numba.prange(n):
        _period_one(
            time, mag, err, band_offsets[i], freqs, step_ids, steps, plan, min_det, n_local,
            coarse_step, fine_step, n_best, factors, zero, out[i],
        )
    return out


def _step_table(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct grid steps and the index of each step (``freqs[k+1] - freqs[k]``)."""
    d = np.diff(freqs)
    if d.size == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(1)
    steps, ids = np.unique(d, return_inverse=True)
    ids = np.append(ids, 0).astype(np.int64)
    if steps.size > 64:
        raise ValueError(
            f"frequency grid has {steps.size} distinct steps; the rotation recurrence needs a "
            "(nearly) uniform grid"
        )
    return ids, steps.astype(np.float64)


def _plan_for(freqs: np.ndarray, precision: str) -> tuple:
    """Lane plan of ``freqs`` in single precision; an empty plan (point-vectorized kernel only)
    in double precision."""
    return _lane_plan(freqs if precision == "single" else freqs[:0])


def _check_precision(precision: str) -> str:
    """Validate a ``precision`` argument (``"single"`` or ``"double"``)."""
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
    return precision


class PeriodFamily(FeatureFamily):
    """``Multiband_period``, ``PPE``, ``Period_band_b``, ``delta_period_b`` and ``Power_rate_*``.

    Parameters
    ----------
    fmin, fmax, fstep : float
        Coarse grid ``np.arange(fmin, fmax, fstep, dtype=float32)`` (ALeRCE: 1e-3, 20, 1e-3).
    fine_step : float
        Step of the fine-tuning grid around each local maximum (ALeRCE: 1e-4).
    n_local_optima : int
        Local maxima fine-tuned (ALeRCE: 10). With fewer local maxima every feature is NaN.
    min_detections : int
        Bands with fewer finite detections are left out of the periodogram (ALeRCE: 6, "> 5").
    n_best_entropy : int
        Highest periodogram values used by ``PPE`` (ALeRCE: 100).
    bands : tuple of int
        Band codes, in the order of ``PackedLightCurves.bands``.
    float32_inputs : bool
        Round mjd, magnitude and error to float32 first, as P4J's ``set_data`` does (mjd ~58000
        then has a resolution of 2**-8 d = 5.6 min). Off by default: the periodogram is then
        computed from the float64 inputs; on, it reproduces P4J's input quantization (useful to
        compare with ALeRCE's production values; P4J's float32 arithmetic is not emulated).
    precision : {"single", "double"}
        Arithmetic of the coarse-grid point sums (the ~20 000-frequency scan). ``"single"``
        (default) doubles the SIMD width: periodogram values then carry relative errors of
        ~1e-5 to 1e-4 (P4J itself computes in float32), best periods agree with ``"double"`` to
        well below the 1e-4 fine-tuning step. Fine-tuning, re-seeds, rotation factors and the
        AoV algebra are double precision in both modes. ``"double"`` gives the periodogram to
        ~1e-12.

    Notes
    -----
    NaN rules: every feature is NaN when no band has ``min_detections`` finite points with a
    non-zero weighted variance, or when the periodogram has fewer than ``n_local_optima`` local
    maxima (P4J then returns ``None`` and ALeRCE's extractor outputs NaN). ``Period_band_b`` and
    ``delta_period_b`` are NaN for a band left out. Points with non-finite time, magnitude or error,
    or error <= 0, are ignored.
    """

    required = ("time", "mag", "err")
    depends = ()

    def __init__(
        self,
        fmin: float = 1e-3,
        fmax: float = 20.0,
        fstep: float = 1e-3,
        fine_step: float = 1e-4,
        n_local_optima: int = 10,
        min_detections: int = 6,
        n_best_entropy: int = 100,
        bands: tuple[int, ...] = BANDS,
        float32_inputs: bool = False,
        precision: str = "single",
    ) -> None:
        if int(min_detections) < 4:
            raise ValueError("PeriodFamily: min_detections must be >= 4 (d2 = N - 3 > 0)")
        if int(n_local_optima) < 1:
            raise ValueError("PeriodFamily: n_local_optima must be >= 1")
        self.fmin = float(fmin)
        self.fmax = float(fmax)
        self.fstep = float(fstep)
        self.fine_step = float(fine_step)
        self.n_local_optima = int(n_local_optima)
        self.min_detections = int(min_detections)
        self.n_best_entropy = int(n_best_entropy)
        self.bands = tuple(int(b) for b in bands)
        self.float32_inputs = bool(float32_inputs)
        self.precision = _check_precision(precision)
        self.freqs = frequency_grid(self.fmin, self.fmax, self.fstep)
        if self.freqs.size < 3:
            raise ValueError("PeriodFamily: the frequency grid needs at least 3 frequencies")
        self._step_ids, self._steps = _step_table(self.freqs)
        self._plan = _plan_for(self.freqs, self.precision)
        self._factors = np.asarray(POWER_RATE_FACTORS, dtype=np.float64)

    @property
    def names(self) -> list[str]:
        names = ["Multiband_period", "PPE"]
        for band in self.bands:
            names += [f"Period_band_{band}", f"delta_period_{band}"]
        return names + list(POWER_RATE_NAMES)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Period features of every object, shape ``(len(lc), len(self.names))``."""
        if tuple(lc.bands) != self.bands:
            raise ValueError(f"PeriodFamily built for bands {self.bands}, got {tuple(lc.bands)}")
        if len(lc) == 0:
            return np.empty((0, len(self.names)))
        dtype = np.float32 if self.float32_inputs else np.float64
        time, mag, err = (
            np.ascontiguousarray(np.asarray(x).astype(dtype), dtype=np.float64)
            for x in (lc.time, lc.mag, lc.err)
        )
        return _period_kernel(
            time,
            mag,
            err,
            lc.column("band_offsets"),
            self.freqs,
            self._step_ids,
            self._steps,
            self._plan,
            self.min_detections,
            self.n_local_optima,
            self.fstep,
            self.fine_step,
            self.n_best_entropy,
            self._factors,
            _PRECISIONS[self.precision],
        )


def mhaov_periodogram(
    time: np.ndarray,
    mag: np.ndarray,
    err: np.ndarray,
    band: np.ndarray,
    freqs: np.ndarray | None = None,
    min_detections: int = 6,
    precision: str = "double",
) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Coarse (not fine-tuned) multiband MHAOV periodogram of ONE object, for inspection.

    Parameters
    ----------
    time, mag, err, band : np.ndarray
        Detections of one object (any order); ``band`` holds band codes.
    freqs : np.ndarray, optional
        Increasing grid with at most 64 distinct steps, e.g. a float32 ``np.arange`` (default:
        ALeRCE's float32 grid 1e-3..20 step 1e-3).
    min_detections : int
        Bands with fewer finite points are left out.
    precision : {"double", "single"}
        Arithmetic of the point sums (see :class:`PeriodFamily`; ``PeriodFamily`` defaults to
        ``"single"``, this inspection helper to ``"double"``).

    Returns
    -------
    freqs, multiband, per_band
        ``per_band`` maps each used band code to its periodogram.
    """
    freqs = frequency_grid() if freqs is None else np.ascontiguousarray(freqs, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    mag = np.asarray(mag, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    band = np.asarray(band)
    codes = np.unique(band)
    order = np.lexsort((time, np.searchsorted(codes, band)))
    counts = np.array([(band == c).sum() for c in codes], dtype=np.int64)
    boff = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ids, steps = _step_table(freqs)
    zero = _PRECISIONS[_check_precision(precision)]
    p, pb, ok = _object_periodogram(
        time[order], mag[order], err[order], boff, freqs, ids, steps,
        _plan_for(freqs, precision), int(min_detections), zero,
    )
    per_band = {int(c): pb[b] for b, c in enumerate(codes) if ok[b]}
    return freqs, p, per_band
