"""Supernova parametric model (SPM) fit per band (reference section 2.2e, 7 per band).

The Villar-like model of ALeRCE's ``SNParametricModelExtractor`` is fitted to the band's flux with
our own bounded Levenberg-Marquardt solver (MINUIT-style sine change of variables for the box,
Marquardt scaling, analytic Jacobian), compiled with numba and run over all objects in one loop.

Deviations from ALeRCE (documented in ``docs/features.md``):

* ALeRCE calls ``scipy.optimize.curve_fit`` (TRF) with the very loose ``ftol = A0/20`` (then
  ``A0/3`` on failure), which stops the optimizer early at an optimizer-dependent point. We use the
  same model, data, bounds, initial guess and unweighted least-squares objective, iterate to a
  tighter tolerance (``ftol`` relative cost change, default 1e-4) and, because the cost surface
  is multimodal, also start from 2 more fixed guesses around the observed peak and keep the
  lowest cost (``n_starts``). ``ftol="alerce", n_starts=1`` mimics ALeRCE's loose stopping rule.
* A fit whose cost becomes non-finite gives NaN for all 7 features (ALeRCE: NaN when both
  ``curve_fit`` calls fail).
"""

from __future__ import annotations

import numba
import numpy as np

from alerce.features.base import FeatureFamily, PackedLightCurves, per_band_names

__all__ = ["SPMFamily", "spm_model", "spm_jacobian", "spm_fit_band", "spm_kernel", "SPM_BASE_NAMES"]

SPM_BASE_NAMES: tuple[str, ...] = (
    "SPM_A", "SPM_t0", "SPM_gamma", "SPM_beta", "SPM_tau_rise", "SPM_tau_fall", "SPM_chi",
)
_NP = 6


@numba.njit(nogil=True, cache=True)
def _terms(t, A, t0, gamma, beta, trise, tfall):
    """Pieces of the model at one time (numerically stable for large |t - t1|)."""
    x = t - t0
    u = x - gamma
    R = 1.0 / (1.0 + np.exp(-x / trise))
    # s = 1 / (1 + exp(-u/3)) and 1 - s with one exponential of a non-positive argument
    if u >= 0.0:
        e = np.exp(-u / 3.0)
        s = 1.0 / (1.0 + e)
        oms = e * s
    else:
        e = np.exp(u / 3.0)
        oms = 1.0 / (1.0 + e)
        s = e * oms
    # exp(-u/tau_fall) * s: for u < 0 the product stays finite (s -> 0 faster when tau_fall > 3)
    Es = np.exp(-u / tfall) * s if u >= 0.0 else np.exp(-u / tfall + u / 3.0) * oms
    B = (1.0 - beta) * Es + (1.0 - beta * x / gamma) * oms
    return x, u, R, s, oms, Es, B


@numba.njit(nogil=True, cache=True)
def spm_model(t, params):
    """SPM flux at times ``t`` (days from the band's first detection).

    ``params = (A, t0, gamma, beta, tau_rise, tau_fall)``;
    ``f = A / (1 + exp(-(t - t0)/tau_rise)) * [(1 - beta) exp(-(t - t1)/tau_fall) s(t)
    + (1 - beta (t - t0)/gamma) (1 - s(t))]`` with ``t1 = t0 + gamma`` and
    ``s(t) = 1/(1 + exp(-(t - t1)/3))``.
    """
    A, t0, gamma, beta, trise, tfall = params[0], params[1], params[2], params[3], params[4], params[5]
    out = np.empty(len(t))
    for j in range(len(t)):
        x, u, R, s, oms, Es, B = _terms(t[j], A, t0, gamma, beta, trise, tfall)
        out[j] = A * R * B
    return out


@numba.njit(nogil=True, cache=True)
def spm_jacobian(t, params):
    """Analytic Jacobian ``d f(t_j) / d params_k`` of :func:`spm_model`, shape ``(len(t), 6)``."""
    A, t0, gamma, beta, trise, tfall = params[0], params[1], params[2], params[3], params[4], params[5]
    J = np.empty((len(t), _NP))
    for j in range(len(t)):
        x, u, R, s, oms, Es, B = _terms(t[j], A, t0, gamma, beta, trise, tfall)
        dR = R * (1.0 - R)  # dR / d(x / trise)
        ds = s * oms / 3.0  # ds / du
        dB_du = (1.0 - beta) * (-Es / tfall + Es * oms / 3.0) - (1.0 - beta * x / gamma) * ds
        dB_dx = -oms * beta / gamma
        J[j, 0] = R * B
        J[j, 1] = A * (-dR / trise * B + R * (-dB_du - dB_dx))
        J[j, 2] = A * R * (-dB_du + oms * beta * x / (gamma * gamma))
        J[j, 3] = A * R * (-Es - x / gamma * oms)
        J[j, 4] = A * B * dR * (-x / (trise * trise))
        J[j, 5] = A * R * (1.0 - beta) * Es * u / (tfall * tfall)
    return J


@numba.njit(nogil=True, cache=True)
def _cost(t, flux, params):
    """Half the sum of squared residuals (no temporary arrays)."""
    A, t0, gamma, beta, trise, tfall = params[0], params[1], params[2], params[3], params[4], params[5]
    c = 0.0
    for j in range(len(t)):
        x, u, R, s, oms, Es, B = _terms(t[j], A, t0, gamma, beta, trise, tfall)
        d = A * R * B - flux[j]
        c += d * d
    return 0.5 * c


@numba.njit(nogil=True, cache=True)
def _normal_equations(t, flux, params, dxdz, H, g):
    """Fill ``H = J^T J`` and ``g = J^T r`` in the ``z`` variables (``J`` scaled by ``dxdz``)."""
    A, t0, gamma, beta, trise, tfall = params[0], params[1], params[2], params[3], params[4], params[5]
    H[:, :] = 0.0
    g[:] = 0.0
    row = np.empty(_NP)
    for j in range(len(t)):
        x, u, R, s, oms, Es, B = _terms(t[j], A, t0, gamma, beta, trise, tfall)
        dR = R * (1.0 - R)
        ds = s * oms / 3.0
        dB_du = (1.0 - beta) * (-Es / tfall + Es * oms / 3.0) - (1.0 - beta * x / gamma) * ds
        dB_dx = -oms * beta / gamma
        row[0] = R * B
        row[1] = A * (-dR / trise * B + R * (-dB_du - dB_dx))
        row[2] = A * R * (-dB_du + oms * beta * x / (gamma * gamma))
        row[3] = A * R * (-Es - x / gamma * oms)
        row[4] = A * B * dR * (-x / (trise * trise))
        row[5] = A * R * (1.0 - beta) * Es * u / (tfall * tfall)
        r = A * R * B - flux[j]
        for k in range(_NP):
            row[k] *= dxdz[k]
        for k in range(_NP):
            g[k] += row[k] * r
            for m in range(k + 1):
                H[k, m] += row[k] * row[m]
    for k in range(_NP):
        for m in range(k):
            H[m, k] = H[k, m]


@numba.njit(nogil=True, cache=True)
def _solve_spd(H, g, free):
    """Solve ``H d = -g`` on the free variables by Cholesky; returns (d, ok)."""
    n = len(g)
    L = np.zeros((n, n))
    d = np.zeros(n)
    for i in range(n):
        if not free[i]:
            continue
        for k in range(i + 1):
            if not free[k]:
                continue
            acc = H[i, k]
            for m in range(k):
                if free[m]:
                    acc -= L[i, m] * L[k, m]
            if i == k:
                if acc <= 0.0 or not np.isfinite(acc):
                    return d, False
                L[i, i] = np.sqrt(acc)
            else:
                L[i, k] = acc / L[k, k]
    y = np.zeros(n)
    for i in range(n):
        if free[i]:
            acc = -g[i]
            for m in range(i):
                if free[m]:
                    acc -= L[i, m] * y[m]
            y[i] = acc / L[i, i]
    for i in range(n - 1, -1, -1):
        if free[i]:
            acc = y[i]
            for m in range(i + 1, n):
                if free[m]:
                    acc -= L[m, i] * d[m]
            d[i] = acc / L[i, i]
    return d, True


@numba.njit(nogil=True, cache=True)
def _to_params(z, lo, hi):
    return lo + (hi - lo) * 0.5 * (1.0 + np.sin(z))


@numba.njit(nogil=True, cache=True)
def bounded_lm(t, flux, x0, lo, hi, ftol, xtol, max_iter):
    """Bounded Levenberg-Marquardt for the SPM least-squares problem.

    Minimizes ``0.5 * sum((spm_model(t, p) - flux)**2)`` over ``lo <= p <= hi``. The box is
    removed by the smooth change of variables ``p = lo + (hi - lo) (1 + sin z) / 2`` (MINUIT's
    transformation: a step across a bound reflects back into the box, like the reflective
    trust-region of scipy's TRF) and ``z`` is optimized with Marquardt-scaled damped Gauss-Newton
    steps (scale invariant, so a parameter starting next to a bound can still move). Stops when
    an accepted step lowers the cost by less than ``ftol`` (relative), changes ``z`` by less than
    ``xtol`` (relative), no damping gives a descent, or after ``max_iter`` iterations.

    Returns
    -------
    params : ndarray
        Best parameters found.
    cost : float
        Their cost (non-finite when the fit failed).
    """
    n = len(x0)
    width = hi - lo
    # strictly feasible start (like scipy's make_strictly_feasible), then z = asin(2 (p - lo) / w - 1)
    x = np.minimum(np.maximum(x0, lo + 1e-10 * width), hi - 1e-10 * width)
    z = np.arcsin(np.minimum(np.maximum(2.0 * (x - lo) / width - 1.0, -1.0), 1.0))
    cost = _cost(t, flux, x)
    if not np.isfinite(cost):
        return x, cost
    lam = 1e-3
    H0 = np.empty((n, n))
    g = np.empty(n)
    for _ in range(max_iter):
        dxdz = 0.5 * width * np.cos(z)
        _normal_equations(t, flux, x, dxdz, H0, g)
        dmax = 0.0
        for k in range(n):
            dmax = max(dmax, H0[k, k])
        if dmax <= 0.0 or not np.isfinite(dmax):
            break
        free = np.ones(n, dtype=np.bool_)
        accepted = False
        new_cost = cost
        z_new = z
        x_new = x
        for _try in range(40):
            H = H0.copy()
            for k in range(n):
                H[k, k] += lam * max(H0[k, k], 1e-12 * dmax)
            d, ok = _solve_spd(H, g, free)
            if not ok:
                lam *= 10.0
                continue
            z_new = z + d
            x_new = _to_params(z_new, lo, hi)
            new_cost = _cost(t, flux, x_new)
            if np.isfinite(new_cost) and new_cost < cost:
                accepted = True
                break
            lam *= 4.0
        if not accepted:
            break
        step = 0.0
        scale = 0.0
        for k in range(n):
            step += (z_new[k] - z[k]) ** 2
            scale += z[k] ** 2
        reduction = cost - new_cost
        old_cost = cost
        z, x, cost = z_new, x_new, new_cost
        lam = max(lam / 3.0, 1e-12)
        if reduction <= ftol * old_cost or np.sqrt(step) <= xtol * (np.sqrt(scale) + xtol):
            break
    return x, cost


@numba.njit(nogil=True, cache=True)
def _flux(mag):
    return 10.0 ** (-(mag + 48.6) / 2.5 + 26.0)


@numba.njit(nogil=True, cache=True)
def spm_fit_band(time, mag, err, ftol, alerce_ftol, max_iter, n_starts, out):
    """Fit one band (magnitudes ``mag`` +- ``err`` at ``time`` sorted) and fill ``out`` (7 values).

    ``out`` is pre-filled with NaN and left so when the band is empty or the fit fails.
    """
    n = len(time)
    if n == 0:
        return
    t = time - time[0]
    flux = _flux(mag)
    eflux = _flux(mag - err) - flux
    fmax = -np.inf
    tmax = 0.0
    for j in range(n):
        if flux[j] > fmax:
            fmax = flux[j]
            tmax = t[j]
    if not (np.isfinite(fmax) and fmax > 0.0):
        return
    lo = np.array([fmax / 3.0, -50.0, 1.0, 0.0, 1.0, 1.0])
    hi = np.array([3.0 * fmax, 50.0, 100.0, 1.0, 100.0, 100.0])
    A0 = max(3.0 * fmax, max(fmax / 3.0, 1.2 * fmax))
    x0 = np.array([A0, -5.0, min(max(t[n - 1], 1.0), 100.0), 0.5,
                   min(max(tmax / 2.0, 1.0), 100.0), 40.0])
    tol = A0 / 20.0 if alerce_ftol else ftol
    params, cost = bounded_lm(t, flux, x0, lo, hi, tol, 1e-12, max_iter)
    if n_starts > 1 and not alerce_ftol:
        # extra starts around the observed peak; keep the lowest cost (the landscape is multimodal)
        starts = np.array([
            [1.2 * fmax, min(max(tmax - 10.0, -50.0), 50.0), min(max(t[n - 1] - tmax, 1.0), 100.0),
             0.5, 5.0, 30.0],
            [fmax, min(max(tmax - 5.0, -50.0), 50.0), 20.0, 0.2, 3.0, 20.0],
            [0.9 * fmax, -20.0, 10.0, 0.7, 10.0, 60.0],
        ])
        for k in range(min(n_starts - 1, len(starts))):
            p_k, c_k = bounded_lm(t, flux, starts[k], lo, hi, tol, 1e-12, max_iter)
            if np.isfinite(c_k) and (not np.isfinite(cost) or c_k < cost):
                params, cost = p_k, c_k
    if not np.isfinite(cost):
        if alerce_ftol:
            params, cost = bounded_lm(t, flux, x0, lo, hi, A0 / 3.0, 1e-12, max_iter)
        if not np.isfinite(cost):
            return
    for k in range(_NP):
        out[k] = params[k]
    dof = n - _NP
    if dof >= 1:
        model = spm_model(t, params)
        chi = 0.0
        for j in range(n):
            chi += (model[j] - flux[j]) ** 2 / (eflux[j] + 0.01) ** 2
        out[6] = chi / dof


@numba.njit(nogil=True, cache=True, parallel=True)
def spm_kernel(time, mag, err, band_offsets, ftol, alerce_ftol, max_iter, n_starts):
    """SPM features of every object and band: ``(n_objects, n_bands * 7)``, band-major."""
    n_obj = band_offsets.shape[0]
    n_bands = band_offsets.shape[1] - 1
    out = np.full((n_obj, n_bands * 7), np.nan)
    for i in numba.prange(n_obj):
        for b in range(n_bands):
            s, e = band_offsets[i, b], band_offsets[i, b + 1]
            spm_fit_band(time[s:e], mag[s:e], err[s:e], ftol, alerce_ftol, max_iter, n_starts,
                         out[i, b * 7:(b + 1) * 7])
    return out


class SPMFamily(FeatureFamily):
    """Supernova parametric model fit per band (7 per band: 6 parameters and ``SPM_chi``).

    Uses the uncorrected ``magpsf``/``sigmapsf`` (``mag_raw``/``err_raw``), ignores isdiffpos,
    times from the band's first detection. ``SPM_chi`` is NaN with fewer than 7 points; all 7 are
    NaN for an empty band or a failed fit.

    Parameters
    ----------
    ftol : float or "alerce"
        Relative cost-change stopping tolerance (default 1e-4; tightening it to 1e-10 changed no
        fit quality on the 30 golden SNe but costs 3x the time). ``"alerce"`` uses ALeRCE's
        ``A0/20`` (an absolute number used as a relative tolerance) then ``A0/3`` on failure.
    max_iter : int
        Maximum Levenberg-Marquardt iterations per band and start.
    n_starts : int
        Number of starting points: ALeRCE's initial guess first, then up to 3 fixed starts around
        the observed peak; the lowest-cost fit is kept (1 = ALeRCE's start only). With 3 starts
        our cost is within 5 % of (or below) scipy's TRF from ALeRCE's start for ~80 % of the
        bands, and below it by > 5 % for ~25 %.
    bands : tuple of int
        Bands to fit.
    """

    required = ("time", "mag_raw", "err_raw")
    band_local = True

    def __init__(self, ftol: float | str = 1e-4, max_iter: int = 50, n_starts: int = 3,
                 bands=(1, 2)):
        self.n_starts = int(n_starts)
        self.alerce_ftol = ftol == "alerce"
        self.ftol = 0.0 if self.alerce_ftol else float(ftol)
        self.max_iter = int(max_iter)
        self.bands = tuple(bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(SPM_BASE_NAMES, self.bands)

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        if len(lc) == 0:
            return np.empty((0, len(self.names)))
        out = spm_kernel(lc.time, lc.mag_raw, lc.err_raw, lc.band_offsets, self.ftol,
                         self.alerce_ftol, self.max_iter, self.n_starts)
        idx = [lc.bands.index(b) for b in self.bands]
        cols = np.concatenate([np.arange(b * 7, (b + 1) * 7) for b in idx])
        return out[:, cols]
