"""Damped-random-walk Gaussian-process features ``GP_DRW_sigma`` and ``GP_DRW_tau`` (reference 2.2a).

ALeRCE (lc_classifier >= 1.1) fits a celerite2 ``RealTerm(a, c)`` kernel,
k(Δt) = a·exp(-c·|Δt|), plus the diagonal noise err², to ``y = mag - mean(mag)`` at
``t - min(t)``, minimizing -log L over (log a, log c) from (0, 0) with L-BFGS-B, and reports
``GP_DRW_sigma = a`` (a variance) and ``GP_DRW_tau = 1 / c`` (days).

Here the exponential kernel is an Ornstein-Uhlenbeck state-space model, so the exact Gaussian
likelihood is an O(N) Kalman recursion; its gradient with respect to (log a, log c) is propagated
through the same recursion (forward-mode), and the minimization is a small L-BFGS written in numba
(with a strong-Wolfe line search, kept inside |log a|, |log c| <= 50, which only matters for
degenerate light curves whose optimum runs off to a = 0 or c = ∞). One ``prange`` loop covers every object x band.

NaN rules: fewer than ``min_points`` (default 6, as ALeRCE's Turbo-FATS era) detections, a
non-finite likelihood at the starting point (e.g. zero errors with duplicate times), or an
optimizer that leaves the finite region give NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names
from alerce.features.turbofats import band_index_map

__all__ = ["GPDRWFamily", "DRW_FEATURES", "drw_nll_grad", "fit_drw"]

#: Feature names of one band.
DRW_FEATURES: tuple[str, ...] = ("GP_DRW_sigma", "GP_DRW_tau")

_LOG_2PI = math.log(2.0 * math.pi)
_BOUND = 50.0
_MAX_MOVE = 2.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def drw_nll_grad(log_a: float, log_c: float, t: np.ndarray, y: np.ndarray, var: np.ndarray):
    """Negative log-likelihood of ``y`` under a·exp(-c|Δt|) + diag(var), and its gradient.

    Parameters
    ----------
    log_a, log_c : float
        Natural logs of the kernel amplitude a and rate c.
    t, y, var : numpy.ndarray
        Sorted times, zero-mean data and noise variances.

    Returns
    -------
    tuple of float
        ``(nll, d nll / d log_a, d nll / d log_c)``; ``nll`` is +inf when an innovation variance
        is not positive.
    """
    a = math.exp(log_a)
    c = math.exp(log_c)
    n = y.shape[0]
    m = 0.0
    dm_a = 0.0
    dm_c = 0.0
    p = a
    dp_a = a
    dp_c = 0.0
    nll = 0.0
    g_a = 0.0
    g_c = 0.0
    for i in range(n):
        s = p + var[i]
        if not (s > 0.0) or not math.isfinite(s):
            return np.inf, 0.0, 0.0
        v = y[i] - m
        inv_s = 1.0 / s
        nll += 0.5 * (v * v * inv_s + math.log(s) + _LOG_2PI)
        # d/dθ of 0.5 (v²/s + log s) with dv = -dm, ds = dp
        g_a += 0.5 * (-2.0 * v * dm_a * inv_s - v * v * dp_a * inv_s * inv_s + dp_a * inv_s)
        g_c += 0.5 * (-2.0 * v * dm_c * inv_s - v * v * dp_c * inv_s * inv_s + dp_c * inv_s)
        k = p * inv_s
        dk_a = (dp_a * s - p * dp_a) * inv_s * inv_s
        dk_c = (dp_c * s - p * dp_c) * inv_s * inv_s
        mp = m + k * v
        dmp_a = dm_a + dk_a * v - k * dm_a
        dmp_c = dm_c + dk_c * v - k * dm_c
        r = var[i] * inv_s
        pp = p * r
        dpp_a = dp_a * r * r
        dpp_c = dp_c * r * r
        if i == n - 1:
            break
        dt = t[i + 1] - t[i]
        phi = math.exp(-c * dt)
        dphi_c = -c * dt * phi
        q = -math.expm1(-2.0 * c * dt)
        dq_c = 2.0 * c * dt * phi * phi
        m = phi * mp
        dm_a = phi * dmp_a
        dm_c = dphi_c * mp + phi * dmp_c
        p = phi * phi * pp + a * q
        dp_a = phi * phi * dpp_a + a * q
        dp_c = 2.0 * phi * dphi_c * pp + phi * phi * dpp_c + a * dq_c
    return nll, g_a, g_c


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _max_step(x0, x1, d0, d1):
    """Largest step along d that keeps (x0, x1) inside the box |x| <= _BOUND."""
    amax = 1e300
    if d0 > 0.0:
        amax = min(amax, (_BOUND - x0) / d0)
    elif d0 < 0.0:
        amax = min(amax, (-_BOUND - x0) / d0)
    if d1 > 0.0:
        amax = min(amax, (_BOUND - x1) / d1)
    elif d1 < 0.0:
        amax = min(amax, (-_BOUND - x1) / d1)
    return amax


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _zoom(x0, x1, d0, d1, f0, dphi0, lo, f_lo, dphi_lo, hi, f_hi, t, y, var, c1, c2):
    """Zoom phase of the strong-Wolfe line search (Nocedal & Wright, algorithm 3.6)."""
    a = lo
    f = f_lo
    g0 = 0.0
    g1 = 0.0
    for _ in range(40):
        # safeguarded quadratic interpolation from the low end, else bisection
        width = hi - lo
        a = 0.5 * (lo + hi)
        if math.isfinite(f_hi):
            denom = 2.0 * (f_hi - f_lo - dphi_lo * width)
            if denom > 0.0:
                cand = lo - dphi_lo * width * width / denom
                lo_b = min(lo, hi) + 0.1 * abs(width)
                hi_b = max(lo, hi) - 0.1 * abs(width)
                if lo_b < cand < hi_b:
                    a = cand
        f, g0, g1 = drw_nll_grad(x0 + a * d0, x1 + a * d1, t, y, var)
        dphi = g0 * d0 + g1 * d1
        if not math.isfinite(f) or f > f0 + c1 * a * dphi0 or f >= f_lo:
            hi = a
            f_hi = f
        else:
            if abs(dphi) <= -c2 * dphi0:
                return a, f, g0, g1, True
            if dphi * (hi - lo) >= 0.0:
                hi = lo
                f_hi = f_lo
            lo = a
            f_lo = f
            dphi_lo = dphi
        if abs(hi - lo) <= 1e-14 * max(1.0, abs(lo)):
            break
    if f_lo < f0:  # no Wolfe point but a decrease: take it
        f, g0, g1 = drw_nll_grad(x0 + lo * d0, x1 + lo * d1, t, y, var)
        return lo, f, g0, g1, lo > 0.0
    return 0.0, f0, 0.0, 0.0, False


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _wolfe_search(x0, x1, d0, d1, f0, dphi0, step, t, y, var):
    """Strong-Wolfe line search (c1 = 1e-4, c2 = 0.9) along d from (x0, x1), inside the box."""
    c1 = 1e-4
    c2 = 0.9
    amax = _max_step(x0, x1, d0, d1)
    # trust cap: move at most _MAX_MOVE in (log a, log c) per iteration, so that a step cannot
    # leap over the likelihood valley onto the flat a -> 0 / c -> inf plateaus
    dn = math.sqrt(d0 * d0 + d1 * d1)
    if dn > 0.0:
        amax = min(amax, _MAX_MOVE / dn)
    if amax <= 0.0:
        return 0.0, f0, 0.0, 0.0, False
    a_prev = 0.0
    f_prev = f0
    dphi_prev = dphi0
    a = min(step, amax)
    for i in range(40):
        f, g0, g1 = drw_nll_grad(x0 + a * d0, x1 + a * d1, t, y, var)
        dphi = g0 * d0 + g1 * d1
        if not math.isfinite(f) or f > f0 + c1 * a * dphi0 or (i > 0 and f >= f_prev):
            return _zoom(x0, x1, d0, d1, f0, dphi0, a_prev, f_prev, dphi_prev, a, f, t, y, var,
                         c1, c2)
        if abs(dphi) <= -c2 * dphi0:
            return a, f, g0, g1, True
        if dphi >= 0.0:
            return _zoom(x0, x1, d0, d1, f0, dphi0, a, f, dphi, a_prev, f_prev, t, y, var, c1, c2)
        if a >= amax:
            return a, f, g0, g1, True
        a_prev = a
        f_prev = f
        dphi_prev = dphi
        a = min(4.0 * a, amax)
    return a_prev, f_prev, 0.0, 0.0, False


@numba.njit(nogil=True, cache=True, error_model="numpy")
def fit_drw(t: np.ndarray, y: np.ndarray, var: np.ndarray, maxiter: int = 1000,
            pgtol: float = 1e-5, ftol: float = 2.220446049250313e-09, memory: int = 10,
            start_a: float = 0.0, start_c: float = 0.0):
    """Minimize :func:`drw_nll_grad` over (log a, log c) from (start_a, start_c) with L-BFGS.

    The line search enforces the strong Wolfe conditions; stopping rules are scipy L-BFGS-B's
    defaults (relative decrease below ``ftol`` or largest projected-gradient component below
    ``pgtol``). Returns ``(log_a, log_c, nll)``; NaNs when the start is not finite.
    """
    x0 = start_a
    x1 = start_c
    f, g0, g1 = drw_nll_grad(x0, x1, t, y, var)
    if not math.isfinite(f):
        return np.nan, np.nan, np.nan
    s_hist = np.zeros((memory, 2))
    y_hist = np.zeros((memory, 2))
    rho = np.zeros(memory)
    alpha_k = np.zeros(memory)
    n_hist = 0
    head = 0
    for _it in range(maxiter):
        # projected gradient on the box |x| <= _BOUND
        pg0 = min(max(x0 - g0, -_BOUND), _BOUND) - x0
        pg1 = min(max(x1 - g1, -_BOUND), _BOUND) - x1
        if max(abs(pg0), abs(pg1)) <= pgtol:
            break
        q0 = g0
        q1 = g1
        for j in range(n_hist):
            idx = (head - 1 - j) % memory
            alpha_k[idx] = rho[idx] * (s_hist[idx, 0] * q0 + s_hist[idx, 1] * q1)
            q0 -= alpha_k[idx] * y_hist[idx, 0]
            q1 -= alpha_k[idx] * y_hist[idx, 1]
        if n_hist > 0:
            last = (head - 1) % memory
            yy = y_hist[last, 0] ** 2 + y_hist[last, 1] ** 2
            gam = 1.0 / (rho[last] * yy)
            q0 *= gam
            q1 *= gam
        for j in range(n_hist - 1, -1, -1):
            idx = (head - 1 - j) % memory
            beta = rho[idx] * (y_hist[idx, 0] * q0 + y_hist[idx, 1] * q1)
            q0 += s_hist[idx, 0] * (alpha_k[idx] - beta)
            q1 += s_hist[idx, 1] * (alpha_k[idx] - beta)
        d0 = -q0
        d1 = -q1
        dphi0 = g0 * d0 + g1 * d1
        if not (dphi0 < 0.0):
            n_hist = 0
            d0 = -g0
            d1 = -g1
            dphi0 = g0 * d0 + g1 * d1
        step = 1.0
        if n_hist == 0:
            dn = math.sqrt(d0 * d0 + d1 * d1)
            step = 1.0 / dn if dn > 1.0 else 1.0
        a, nf, ng0, ng1, ok = _wolfe_search(x0, x1, d0, d1, f, dphi0, step, t, y, var)
        if not ok or not math.isfinite(nf):
            if n_hist == 0:
                break
            n_hist = 0  # retry once along the steepest descent
            continue
        s0 = a * d0
        s1 = a * d1
        yv0 = ng0 - g0
        yv1 = ng1 - g1
        sy = s0 * yv0 + s1 * yv1
        f_old = f
        x0 = min(max(x0 + s0, -_BOUND), _BOUND)
        x1 = min(max(x1 + s1, -_BOUND), _BOUND)
        f = nf
        g0 = ng0
        g1 = ng1
        if sy > 2.2e-16 * (yv0 * yv0 + yv1 * yv1):
            s_hist[head, 0] = s0
            s_hist[head, 1] = s1
            y_hist[head, 0] = yv0
            y_hist[head, 1] = yv1
            rho[head] = 1.0 / sy
            head = (head + 1) % memory
            if n_hist < memory:
                n_hist += 1
        if (f_old - f) <= ftol * max(abs(f_old), abs(f), 1.0):
            break
    return x0, x1, f


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _drw_band(t, m, e, out, n_starts):
    n = m.shape[0]
    mean = 0.0
    for v in m:
        mean += v
    mean /= n
    t0 = t[0]
    for v in t:
        if v < t0:
            t0 = v
    tt = np.empty(n)
    y = np.empty(n)
    var = np.empty(n)
    for i in range(n):
        tt[i] = t[i] - t0
        y[i] = m[i] - mean
        var[i] = e[i] * e[i]
        if not (math.isfinite(tt[i]) and math.isfinite(y[i]) and math.isfinite(var[i])):
            return
    # ALeRCE's start (0, 0), then data-driven starts (a = sample variance, 1/c = 10 d and
    # 1/3 of the baseline); the lowest likelihood optimum wins, since the DRW likelihood often has
    # a short-tau and a long-tau local minimum and flat a -> 0 / c -> inf plateaus.
    la, lc, f = fit_drw(tt, y, var, 1000, 1e-5, 2.220446049250313e-09, 10, 0.0, 0.0)
    if n_starts > 1:
        s2 = 0.0
        for v in y:
            s2 += v * v
        s2 /= n
        span = tt[n - 1] - tt[0]
        la0 = math.log(s2) if s2 > 0.0 else 0.0
        for k in range(1, n_starts):
            tau0 = 10.0 if k == 1 else max(span / 3.0, 1.0)
            la2, lc2, f2 = fit_drw(tt, y, var, 1000, 1e-5, 2.220446049250313e-09, 10,
                                   la0, -math.log(tau0))
            if math.isfinite(f2) and not (f2 >= f):
                la, lc, f = la2, lc2, f2
    if math.isfinite(f):
        a = math.exp(la)
        tau = math.exp(-lc)
        if math.isfinite(a) and math.isfinite(tau):
            out[0] = a
            out[1] = tau


@numba.njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def _drw_kernel(time, mag, err, band_offsets, band_pos, min_points, n_starts):
    n_obj = band_offsets.shape[0]
    nb = band_pos.shape[0]
    out = np.full((n_obj, nb * 2), np.nan)
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
        _drw_band(time[lo:hi], mag[lo:hi], err[lo:hi], out[i, 2 * b:2 * b + 2], n_starts)
    return out


class GPDRWFamily(FeatureFamily):
    """``GP_DRW_sigma`` (kernel variance a) and ``GP_DRW_tau`` (1/c, days) per band.

    Parameters
    ----------
    min_points : int
        Bands with fewer detections give NaN (default 6).
    n_starts : int
        Number of optimizer starts: 1 is ALeRCE's single start at (0, 0); 2 and 3 add starts at
        a = sample variance with 1/c = 10 d and 1/c = baseline / 3, keeping the best likelihood.
    bands : sequence of int
        Band codes whose features are produced, default g and r.
    """

    required = ("time", "mag", "err")
    band_local = True

    def __init__(self, min_points: int = 6, n_starts: int = 3, bands: Sequence[int] = BANDS) -> None:
        if not 1 <= int(n_starts) <= 3:
            raise ValueError(f"GPDRWFamily: n_starts must be 1, 2 or 3, got {n_starts}")
        self.n_starts = int(n_starts)
        self.min_points = int(min_points)
        self.bands = tuple(int(b) for b in bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(DRW_FEATURES, self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Return ``(len(lc), 2 * len(bands))`` float64 features."""
        return _drw_kernel(
            lc.column("time"),
            lc.column("mag"),
            lc.column("err"),
            lc.column("band_offsets"),
            band_index_map(lc.bands, self.bands), self.min_points, self.n_starts,
        )
