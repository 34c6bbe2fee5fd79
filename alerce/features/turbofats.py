"""Turbo-FATS statistics (reference section 2.2a): 26 features per band, numba-compiled.

One compiled loop (``prange`` over every object x band) computes all 26 statistics of a band from
the packed ``time``, ``mag`` and ``err`` arrays. The definitions follow ALeRCE's ``turbofats``
(``FeatureFunctionLib``, ``features/structure_function.py``, ``features/irregular_autoregressive.py``)
as described in ``ALERCE_REFERENCE.md`` section 2.2a:

* σ is the population standard deviation (ddof 0) unless stated otherwise;
* percentiles use numpy's default linear interpolation;
* ``Skew`` is scipy's biased skewness (NaN for a constant band, as scipy);
* ``AndersonDarling`` is ``1 / (1 + exp(-10 (A - 0.3)))`` of the normal-case A² statistic;
* ``Autocor_length`` is the first lag whose (statsmodels-definition) ACF drops below 1/e, or N;
* ``Pvar`` is the χ² CDF (regularized lower incomplete gamma written here) of Σ(m-m̄)²/err²;
* ``SF_ML_amplitude``/``SF_ML_gamma`` are the binned structure-function power-law fit with
  ALeRCE's clipping;
* ``IAR_phi`` minimizes the irregular-AR(1) Kalman negative log-likelihood on (0, 1) with a bounded
  Brent (golden-section + parabolic) minimizer, ``xatol=1e-12``, ``maxiter=50000``.

NaN rules: a band with fewer than ``min_points`` (default 6, i.e. ALeRCE's "≤ 5 points → NaN")
detections gives NaN for all 26 features. Any statistic that comes out infinite (for example
``MaxSlope`` with two detections at the same time, or ``Meanvariance`` of a zero mean) is reported
as NaN, so the output is always finite or NaN. ``IAR_phi`` is NaN for a constant band (the
standardization divides by zero).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names

__all__ = [
    "TURBOFATS_FEATURES",
    "TurboFatsFamily",
    "turbofats_band",
    "iar_phi_nll",
    "structure_function",
    "chi2_cdf",
    "gammainc_lower",
    "anderson_darling_statistic",
    "acf_length",
    "percentile_sorted",
    "band_index_map",
]

#: The 26 Turbo-FATS features of one band, in ALeRCE's order.
TURBOFATS_FEATURES: tuple[str, ...] = (
    "Amplitude", "AndersonDarling", "Autocor_length", "Beyond1Std", "Con", "Eta_e", "Gskew",
    "MaxSlope", "Mean", "Meanvariance", "MedianAbsDev", "MedianBRP", "PairSlopeTrend",
    "PercentAmplitude", "Q31", "Rcs", "Skew", "SmallKurtosis", "Std", "StetsonK", "Pvar",
    "ExcessVar", "SF_ML_amplitude", "SF_ML_gamma", "IAR_phi", "LinearTrend",
)
N_TURBOFATS = len(TURBOFATS_FEATURES)

#: Structure-function bin edges: ``10 ** arange(log10 5, log10 2000, 0.1)`` (days), as numpy makes them.
SF_BIN_EDGES: np.ndarray = 10.0 ** np.arange(np.log10(5.0), np.log10(2000.0), 0.1)

_NAN = np.nan
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT_EPS = math.sqrt(2.2e-16)
_GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))
_INV_E = math.exp(-1.0)


# --------------------------------------------------------------------------------------------
# small numeric helpers (numpy/scipy-compatible definitions)
# --------------------------------------------------------------------------------------------
@numba.njit(nogil=True, cache=True, error_model="numpy")
def _lerp(a: float, b: float, t: float) -> float:
    """numpy's interpolation between two order statistics (``np.percentile`` 'linear')."""
    d = b - a
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@numba.njit(nogil=True, cache=True, error_model="numpy")
def percentile_sorted(s: np.ndarray, q: float) -> float:
    """``np.percentile(s, q)`` of an already sorted, non-empty array (linear interpolation)."""
    n = s.shape[0]
    vi = (n - 1) * (q / 100.0)
    lo = int(math.floor(vi))
    if lo < 0:
        lo = 0
    if lo >= n - 1:
        return s[n - 1]
    return _lerp(s[lo], s[lo + 1], vi - lo)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _median_sorted(s: np.ndarray, lo: int, hi: int) -> float:
    """Median of the sorted slice ``s[lo:hi]`` (mean of the two middle values when even)."""
    n = hi - lo
    if n <= 0:
        return _NAN
    mid = lo + n // 2
    if n % 2 == 1:
        return s[mid]
    return (s[mid - 1] + s[mid]) / 2.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _log_ndtr(w: float) -> float:
    """log of the standard normal CDF, accurate in both tails (scipy ``log_ndtr``)."""
    if w != w:
        return _NAN
    if w > 0.0:
        return math.log1p(-0.5 * math.erfc(w / _SQRT2))
    if w > -20.0:
        return math.log(0.5 * math.erfc(-w / _SQRT2))
    # asymptotic series: Phi(w) ~ phi(w)/|w| * (1 - 1/w^2 + 3/w^4 - 15/w^6 + ...)
    w2 = w * w
    term = 1.0
    total = 1.0
    for k in range(1, 8):
        term *= -(2.0 * k - 1.0) / w2
        total += term
    return -0.5 * w2 - math.log(-w) - _LOG_SQRT_2PI + math.log(total)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def anderson_darling_statistic(sorted_x: np.ndarray) -> float:
    """Anderson-Darling A² for the normal case (``scipy.stats.anderson(x)[0]``), x sorted."""
    n = sorted_x.shape[0]
    mean = 0.0
    for v in sorted_x:
        mean += v
    mean /= n
    ss = 0.0
    for v in sorted_x:
        ss += (v - mean) ** 2
    s = math.sqrt(ss / (n - 1))
    acc = 0.0
    for i in range(n):
        wi = (sorted_x[i] - mean) / s
        wr = (sorted_x[n - 1 - i] - mean) / s
        acc += (2.0 * (i + 1) - 1.0) / n * (_log_ndtr(wi) + _log_ndtr(-wr))
    return -n - acc


@numba.njit(nogil=True, cache=True, error_model="numpy")
def gammainc_lower(a: float, x: float) -> float:
    """Regularized lower incomplete gamma P(a, x) (series / Lentz continued fraction)."""
    if not (a > 0.0) or x != x:
        return _NAN
    if x <= 0.0:
        return 0.0
    if math.isinf(x):
        return 1.0
    log_pref = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        ap = a
        d = 1.0 / a
        s = d
        for _ in range(200000):
            ap += 1.0
            d *= x / ap
            s += d
            if abs(d) < abs(s) * 1e-17:
                break
        v = s * math.exp(log_pref)
        return 1.0 if v > 1.0 else v
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 200000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < tiny:
            d = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-17:
            break
    v = 1.0 - math.exp(log_pref) * h
    return 0.0 if v < 0.0 else v


@numba.njit(nogil=True, cache=True, error_model="numpy")
def chi2_cdf(x: float, df: float) -> float:
    """CDF of the χ² distribution with ``df`` degrees of freedom (``scipy.stats.chi2.cdf``)."""
    return gammainc_lower(0.5 * df, 0.5 * x)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def acf_length(m: np.ndarray, threshold: float) -> float:
    """First lag whose autocorrelation is below ``threshold``; ``len(m)`` when none is.

    The ACF is statsmodels' ``acf(fft=False)``: demeaned autocovariances divided by N, normalized
    by the lag-0 value. ALeRCE's search in blocks of 100 lags (stopping when the block exceeds N)
    reduces to scanning lags 0 .. N-1.
    """
    n = m.shape[0]
    mean = 0.0
    for v in m:
        mean += v
    mean /= n
    d = np.empty(n)
    for i in range(n):
        d[i] = m[i] - mean
    c0 = 0.0
    for i in range(n):
        c0 += d[i] * d[i]
    for k in range(n):
        ck = 0.0
        for i in range(n - k):
            ck += d[i] * d[i + k]
        if ck / c0 < threshold:
            return float(k)
    return float(n)


# --------------------------------------------------------------------------------------------
# structure function (SF_ML_amplitude, SF_ML_gamma)
# --------------------------------------------------------------------------------------------
@numba.njit(nogil=True, cache=True, error_model="numpy")
def structure_function(t: np.ndarray, m: np.ndarray, e: np.ndarray, edges: np.ndarray):
    """ALeRCE's SF_ML fit: returns ``(A, gamma)``.

    Pairs with 5 <= Δt <= 365 d are binned on ``edges``; per non-empty bin
    SF = sqrt(mean(Δm² - (e_i² + e_j²))) (bins with a negative mean are skipped), τ = bin centre
    in years. With fewer than 2 bins: (-0.5, -0.5). Otherwise a least-squares line
    log10 SF = log10 A + γ log10 τ over 0.01 < τ <= 0.5 (one point: numpy ``polyfit``'s
    minimum-norm solution; none: -0.5, -0.5), then A < 0.005 -> (0, 0), A > 15 -> 15 and γ is
    clipped to [-0.5, 3].
    """
    nb = edges.shape[0] - 1
    sums = np.zeros(nb)
    counts = np.zeros(nb, dtype=np.int64)
    n = t.shape[0]
    lo_edge = edges[0]
    hi_edge = edges[nb]
    for i in range(n):
        ei2 = e[i] * e[i]
        for j in range(i + 1, n):
            dt = t[j] - t[i]
            if dt < 5.0 or dt > 365.0:
                continue
            if dt < lo_edge or dt >= hi_edge:
                continue
            # bin k with edges[k] <= dt < edges[k + 1] (binary search)
            lo = 0
            hi = nb
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if edges[mid] <= dt:
                    lo = mid
                else:
                    hi = mid
            dm = m[i] - m[j]
            sums[lo] += dm * dm - (ei2 + e[j] * e[j])
            counts[lo] += 1
    sx = 0.0
    sy = 0.0
    npts = 0
    nbins = 0
    xs = np.empty(nb)
    ys = np.empty(nb)
    for k in range(nb):
        if counts[k] == 0:
            continue
        mean_sf = sums[k] / counts[k]
        if mean_sf < 0.0 or mean_sf != mean_sf:
            continue
        nbins += 1
        tau = (edges[k] + edges[k + 1]) * 0.5 / 365.0
        if tau <= 0.5 and tau > 0.01:
            xs[npts] = math.log10(tau)
            ys[npts] = math.log10(math.sqrt(mean_sf))
            sx += xs[npts]
            sy += ys[npts]
            npts += 1
    if nbins < 2 or npts == 0:
        return -0.5, -0.5
    for k in range(npts):
        if not math.isfinite(ys[k]):
            return _NAN, _NAN
    if npts == 1:
        slope = ys[0] / (2.0 * xs[0])
        intercept = ys[0] / 2.0
    else:
        xm = sx / npts
        ym = sy / npts
        sxx = 0.0
        sxy = 0.0
        for k in range(npts):
            sxx += (xs[k] - xm) ** 2
            sxy += (xs[k] - xm) * (ys[k] - ym)
        slope = sxy / sxx
        intercept = ym - slope * xm
    a = 10.0 ** intercept
    gamma = slope
    if a < 0.005:
        a = 0.0
        gamma = 0.0
    elif a > 15.0:
        a = 15.0
    if gamma > 3.0:
        gamma = 3.0
    elif gamma < -0.5:
        gamma = -0.5
    return a, gamma


# --------------------------------------------------------------------------------------------
# IAR_phi
# --------------------------------------------------------------------------------------------
@numba.njit(nogil=True, cache=True, error_model="numpy")
def iar_phi_nll(phi: float, t: np.ndarray, y: np.ndarray, d: np.ndarray) -> float:
    """Irregular AR(1) Kalman objective of Eyheramendy et al. (2018) as coded in turbofats.

    ``y`` and ``d`` are the standardized magnitudes and errors. Returns
    (Σ ln Λ + Σ (y_i - x̂_i)² / Λ) / n with Λ = Σ̂ + d_{i+1}², or 1e10 outside |φ| < 1.
    """
    n = y.shape[0]
    if phi != phi:
        phi = 1.1
    if not abs(phi) < 1.0:
        return 1e10
    sighat = 1.0
    q = 1.0
    xhat = 0.0
    sum_lambda = 0.0
    sum_error = 0.0
    for i in range(n - 1):
        lam = sighat + d[i + 1] ** 2
        if lam <= 0.0 or lam != lam:
            sum_lambda = n * 1e10
            break
        dt = t[i + 1] - t[i]
        f = phi ** dt
        qt = (1.0 - f * f) * q  # phi ** (2 dt), one pow fewer
        sum_lambda += math.log(lam)
        theta = f * sighat
        innov = y[i] - xhat
        sum_error += innov * innov / lam
        xhat = f * xhat + theta / lam * innov
        sighat = f * sighat * f + qt - theta / lam * theta
    out = (sum_lambda + sum_error) / n
    if sum_lambda != sum_lambda:
        out = 1e10
    return out


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _iar_phi_fit(t, y, d, xatol, maxiter):
    """Bounded Brent minimization of :func:`iar_phi_nll` over (0, 1); returns the argmin."""
    a = 0.0
    b = 1.0
    fulc = a + _GOLDEN * (b - a)
    nfc = fulc
    xf = fulc
    rat = 0.0
    e = 0.0
    x = xf
    fx = iar_phi_nll(x, t, y, d)
    num = 1
    ffulc = fx
    fnfc = fx
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    while abs(xf - xm) > (tol2 - 0.5 * (b - a)):
        golden = True
        if abs(e) > tol1:
            golden = False
            r = (xf - nfc) * (fx - ffulc)
            q = (xf - fulc) * (fx - fnfc)
            p = (xf - fulc) * q - (xf - nfc) * r
            q = 2.0 * (q - r)
            if q > 0.0:
                p = -p
            q = abs(q)
            r = e
            e = rat
            if abs(p) < abs(0.5 * q * r) and p > q * (a - xf) and p < q * (b - xf):
                rat = (p + 0.0) / q
                x = xf + rat
                if (x - a) < tol2 or (b - x) < tol2:
                    diff = xm - xf
                    si = 1.0 if diff >= 0.0 else -1.0
                    rat = tol1 * si
            else:
                golden = True
        if golden:
            if xf >= xm:
                e = a - xf
            else:
                e = b - xf
            rat = _GOLDEN * e
        si = 1.0 if rat >= 0.0 else -1.0
        step = abs(rat)
        if step < tol1:
            step = tol1
        x = xf + si * step
        fu = iar_phi_nll(x, t, y, d)
        num += 1
        if fu <= fx:
            if x >= xf:
                a = xf
            else:
                b = xf
            fulc = nfc
            ffulc = fnfc
            nfc = xf
            fnfc = fx
            xf = x
            fx = fu
        else:
            if x < xf:
                a = x
            else:
                b = x
            if fu <= fnfc or nfc == xf:
                fulc = nfc
                ffulc = fnfc
                nfc = x
                fnfc = fu
            elif fu <= ffulc or fulc == xf or fulc == nfc:
                fulc = x
                ffulc = fu
        xm = 0.5 * (a + b)
        tol1 = _SQRT_EPS * abs(xf) + xatol / 3.0
        tol2 = 2.0 * tol1
        if num >= maxiter:
            break
    return xf


# --------------------------------------------------------------------------------------------
# one band -> 26 values
# --------------------------------------------------------------------------------------------
@numba.njit(nogil=True, cache=True, error_model="numpy")
def turbofats_band(t, m, e, out, sf_edges, iar_xatol, iar_maxiter, want):
    """Fill ``out[0:26]`` with the Turbo-FATS features of one time-sorted band (N >= 2).

    Only the features with ``want[j]`` True are computed; the others keep their value in ``out``.
    """
    n = m.shape[0]
    nf = float(n)
    srt = np.sort(m)

    mean = 0.0
    for v in m:
        mean += v
    mean /= n
    ss = 0.0
    s3 = 0.0
    s4 = 0.0
    for v in m:
        dv = v - mean
        dv2 = dv * dv
        ss += dv2
        s3 += dv2 * dv
        s4 += dv2 * dv2
    var = ss / n
    std = math.sqrt(var)
    median = _median_sorted(srt, 0, n)

    if want[0]:  # Amplitude
        k = int(math.ceil(0.05 * n))
        out[0] = (_median_sorted(srt, n - k, n) - _median_sorted(srt, 0, k)) / 2.0 if k > 0 else _NAN
    if want[1]:  # AndersonDarling
        a2 = anderson_darling_statistic(srt)
        out[1] = 1.0 / (1.0 + math.exp(-10.0 * (a2 - 0.3)))
    if want[2]:  # Autocor_length
        out[2] = acf_length(m, _INV_E)
    wmean = _NAN
    if want[3] or want[19]:  # weighted mean for Beyond1Std and StetsonK
        sw = 0.0
        swm = 0.0
        for i in range(n):
            w = 1.0 / (e[i] * e[i])
            sw += w
            swm += w * m[i]
        wmean = swm / sw
    if want[3]:  # Beyond1Std: ddof-1 scatter about the weighted mean
        sdev = 0.0
        for v in m:
            sdev += (v - wmean) ** 2
        s1 = math.sqrt(sdev / (n - 1))
        cnt = 0
        for v in m:
            if v > wmean + s1 or v < wmean - s1:
                cnt += 1
        out[3] = cnt / nf if wmean == wmean else _NAN
    if want[4]:  # Con
        if n < 3:
            out[4] = 0.0
        else:
            hi2 = mean + 2.0 * std
            lo2 = mean - 2.0 * std
            cnt = 0
            run = 0
            for i in range(n):
                v = m[i]
                if v > hi2 or v < lo2:
                    run += 1
                    if run >= 3:
                        cnt += 1
                else:
                    run = 0
            out[4] = cnt / (n - 2.0)
    if want[5]:  # Eta_e
        s1w = 0.0
        s2w = 0.0
        for i in range(n - 1):
            dt = t[i + 1] - t[i]
            w = 1.0 / (dt * dt)
            dm = m[i + 1] - m[i]
            s1w += w * dm * dm
            s2w += w
        out[5] = (1.0 / var) * (s1w / s2w)
    if want[6]:  # Gskew
        p3 = percentile_sorted(srt, 3.0)
        p97 = percentile_sorted(srt, 97.0)
        nlo = 0
        while nlo < n and srt[nlo] <= p3:
            nlo += 1
        nhi = n
        while nhi > 0 and srt[nhi - 1] >= p97:
            nhi -= 1
        out[6] = _median_sorted(srt, 0, nlo) + _median_sorted(srt, nhi, n) - 2.0 * median
    if want[7]:  # MaxSlope
        mx = -np.inf
        anynan = False
        for i in range(n - 1):
            sl = abs(m[i + 1] - m[i]) / (t[i + 1] - t[i])
            if sl != sl:
                anynan = True
            elif sl > mx:
                mx = sl
        out[7] = _NAN if anynan else mx
    out[8] = mean
    out[9] = std / mean
    if want[10] or want[13]:  # MedianAbsDev, PercentAmplitude
        dev = np.empty(n)
        for i in range(n):
            dev[i] = abs(m[i] - median)
        dev.sort()
        out[10] = _median_sorted(dev, 0, n)
        out[13] = dev[n - 1] / median
    if want[11]:  # MedianBRP
        brp = (srt[n - 1] - srt[0]) / 10.0
        cnt = 0
        for v in m:
            if v < median + brp and v > median - brp:
                cnt += 1
        out[11] = cnt / nf
    if want[12]:  # PairSlopeTrend (last 30 points)
        start = n - 30 if n > 30 else 0
        up = 0
        down = 0
        for i in range(start, n - 1):
            dm = m[i + 1] - m[i]
            if dm > 0.0:
                up += 1
            elif dm <= 0.0:
                down += 1
        out[12] = (up - down) / 30.0
    if want[14]:  # Q31
        out[14] = percentile_sorted(srt, 75.0) - percentile_sorted(srt, 25.0)
    if want[15]:  # Rcs
        c = 0.0
        cmax = -np.inf
        cmin = np.inf
        for v in m:
            c += (v - mean) / (nf * std)
            if c > cmax:
                cmax = c
            if c < cmin:
                cmin = c
        out[15] = cmax - cmin
    # Skew (scipy biased, NaN when the variance is numerically zero)
    if ss / n <= (1e-15 * mean) ** 2:
        out[16] = _NAN
    else:
        out[16] = (s3 / n) / (ss / n) ** 1.5
    # SmallKurtosis
    if n > 3:
        c1 = nf * (nf + 1.0) / ((nf - 1.0) * (nf - 2.0) * (nf - 3.0))
        c2 = 3.0 * (nf - 1.0) ** 2 / ((nf - 2.0) * (nf - 3.0))
        out[17] = c1 * (s4 / (var * var)) - c2
    else:
        out[17] = _NAN
    out[18] = std
    if want[19]:  # StetsonK (weighted mean)
        sabs = 0.0
        ssq = 0.0
        fac = math.sqrt(nf / (nf - 1.0))
        for i in range(n):
            dl = fac * (m[i] - wmean) / e[i]
            sabs += abs(dl)
            ssq += dl * dl
        out[19] = sabs / math.sqrt(nf) / math.sqrt(ssq)
    if want[20] or want[21]:  # Pvar, ExcessVar
        chi = 0.0
        ex = 0.0
        for i in range(n):
            d2 = (m[i] - mean) ** 2
            e2 = e[i] * e[i]
            chi += d2 / e2
            ex += d2 - e2
        out[20] = chi2_cdf(chi, nf - 1.0) if want[20] else _NAN
        out[21] = ex / (nf * mean * mean)
    if want[22] or want[23]:  # SF_ML
        sfa, sfg = structure_function(t, m, e, sf_edges)
        out[22] = sfa
        out[23] = sfg
    if want[24]:  # IAR_phi, standardized with ddof=1
        s_iar = math.sqrt(ss / (n - 1))
        if s_iar > 0.0 and math.isfinite(s_iar):
            esum = 0.0
            for v in e:
                esum += v
            y = np.empty(n)
            d = np.empty(n)
            for i in range(n):
                y[i] = (m[i] - mean) / s_iar
                d[i] = 0.0 if esum == 0.0 else e[i] / s_iar
            out[24] = _iar_phi_fit(t, y, d, iar_xatol, iar_maxiter)
        else:
            out[24] = _NAN
    if want[25]:  # LinearTrend (linregress slope)
        tm = 0.0
        for v in t:
            tm += v
        tm /= n
        sxx = 0.0
        sxy = 0.0
        for i in range(n):
            dx = t[i] - tm
            sxx += dx * dx
            sxy += dx * (m[i] - mean)
        out[25] = sxy / sxx if sxx > 0.0 else _NAN

    for j in range(N_TURBOFATS):
        if not math.isfinite(out[j]):
            out[j] = _NAN


@numba.njit(nogil=True, cache=True, parallel=True, error_model="numpy")
def _turbofats_kernel(time, mag, err, band_offsets, band_pos, min_points, sf_edges,
                      iar_xatol, iar_maxiter, want):
    n_obj = band_offsets.shape[0]
    nb = band_pos.shape[0]
    out = np.full((n_obj, nb * N_TURBOFATS), np.nan)
    for task in numba.prange(n_obj * nb):
        i = task // nb
        b = task % nb
        p = band_pos[b]
        if p < 0:
            continue
        lo = band_offsets[i, p]
        hi = band_offsets[i, p + 1]
        if hi - lo < min_points or hi - lo < 2:
            continue
        row = out[i, b * N_TURBOFATS:(b + 1) * N_TURBOFATS]
        turbofats_band(time[lo:hi], mag[lo:hi], err[lo:hi], row, sf_edges, iar_xatol, iar_maxiter,
                       want)
    return out


def band_index_map(lc_bands: Sequence[int], wanted: Sequence[int]) -> np.ndarray:
    """Position of each wanted band in ``lc_bands`` (-1 when the packed curves lack it)."""
    lc_bands = [int(b) for b in lc_bands]
    return np.array([lc_bands.index(int(b)) if int(b) in lc_bands else -1 for b in wanted],
                    dtype=np.int64)


def _as_f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


class TurboFatsFamily(FeatureFamily):
    """The 26 Turbo-FATS statistics per band (reference 2.2a), ``<Feature>_<fid>`` names.

    Parameters
    ----------
    min_points : int
        Bands with fewer detections give NaN for all 26 features (ALeRCE: 6).
    iar_xatol, iar_maxiter : float, int
        Tolerance and evaluation budget of the bounded Brent search of ``IAR_phi``.
    bands : sequence of int
        Band codes whose features are produced (suffixes), default g and r.
    features : sequence of str, optional
        Subset of :data:`TURBOFATS_FEATURES` to output (default all 26, ALeRCE's order); the
        costlier statistics that are not asked for are skipped.
    """

    required = ("time", "mag", "err")
    band_local = True

    def __init__(self, min_points: int = 6, iar_xatol: float = 1e-12, iar_maxiter: int = 50000,
                 bands: Sequence[int] = BANDS, features: Sequence[str] | None = None) -> None:
        self.min_points = int(min_points)
        self.iar_xatol = float(iar_xatol)
        self.iar_maxiter = int(iar_maxiter)
        self.bands = tuple(int(b) for b in bands)
        chosen = TURBOFATS_FEATURES if features is None else tuple(features)
        unknown = sorted(set(chosen) - set(TURBOFATS_FEATURES))
        if unknown:
            raise ValueError(f"TurboFatsFamily: unknown feature(s) {unknown}; "
                             f"choose among {list(TURBOFATS_FEATURES)}")
        self.features = chosen
        self._cols = np.array([TURBOFATS_FEATURES.index(f) for f in chosen], dtype=np.int64)
        self._want = np.zeros(N_TURBOFATS, dtype=np.bool_)
        self._want[self._cols] = True

    @property
    def names(self) -> list[str]:
        return per_band_names(self.features, self.bands)

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Return ``(len(lc), len(features) * len(bands))`` float64 features (NaN where not computable)."""
        full = _turbofats_kernel(
            _as_f64(lc.time), _as_f64(lc.mag), _as_f64(lc.err),
            lc.column("band_offsets"),
            band_index_map(lc.bands, self.bands), self.min_points, SF_BIN_EDGES,
            self.iar_xatol, self.iar_maxiter, self._want,
        )
        if len(self._cols) == N_TURBOFATS:
            return full
        idx = (np.arange(len(self.bands))[:, None] * N_TURBOFATS + self._cols[None, :]).ravel()
        return np.ascontiguousarray(full[:, idx])
