"""Tests of the statistical feature families: Turbo-FATS, GP_DRW, MHPS and IQR.

Every statistic is checked against an independent numpy/scipy/statsmodels/celerite2 computation
written here from the reference formulas (ALERCE_REFERENCE.md section 2.2a-c).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared
from scipy import optimize, special, stats

from alerce.features.base import PackedLightCurves
from alerce.features.drw import GPDRWFamily, drw_nll_grad, fit_drw
from alerce.features.iqr import IQRFamily
from alerce.features.mhps import MHPS_FEATURES, MHPSFamily
from alerce.features.turbofats import (
    SF_BIN_EDGES,
    TURBOFATS_FEATURES,
    TurboFatsFamily,
    acf_length,
    anderson_darling_statistic,
    chi2_cdf,
    gammainc_lower,
    iar_phi_nll,
)

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def pack(curves: list[dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]],
         bands=(1, 2)) -> PackedLightCurves:
    """Pack ``[{band: (t, m, e)}, ...]`` (one dict per object) into PackedLightCurves."""
    ts, ms, es = [], [], []
    offsets = np.zeros((len(curves), len(bands) + 1), dtype=np.int64)
    pos = 0
    for i, obj in enumerate(curves):
        for b, band in enumerate(bands):
            offsets[i, b] = pos
            if band in obj:
                t, m, e = (np.asarray(x, dtype=float) for x in obj[band])
                order = np.argsort(t, kind="stable")
                ts.append(t[order])
                ms.append(m[order])
                es.append(e[order])
                pos += len(t)
        offsets[i, -1] = pos
    def cat(xs):
        return np.concatenate(xs) if xs else np.empty(0)

    time, mag, err = cat(ts), cat(ms), cat(es)
    nan = np.full(len(time), np.nan)
    return PackedLightCurves(
        oids=np.array([f"obj{i}" for i in range(len(curves))], dtype=object), bands=tuple(bands),
        time=time, mag=mag, err=err, mag_raw=mag, err_raw=err, isdiffpos=np.ones(len(time)),
        rb=nan, ra=nan, dec=nan, band_offsets=offsets, nd_time=np.empty(0),
        nd_diffmaglim=np.empty(0), nd_band_offsets=np.zeros_like(offsets))


def synthetic(n: int, seed: int, kind: str = "sine"):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(58000.0, 58000.0 + rng.uniform(30, 900), n))
    e = rng.uniform(0.01, 0.15, n)
    if kind == "sine":
        m = 18.0 + 0.4 * np.sin(2 * np.pi * t / rng.uniform(0.3, 60)) + rng.normal(0, 1, n) * e
    elif kind == "transient":
        m = 19.5 - 2.0 * np.exp(-0.5 * ((t - t.mean()) / 20.0) ** 2) + rng.normal(0, 1, n) * e
    else:  # DRW via exact AR(1) recursion
        tau, sig = rng.uniform(5, 100), rng.uniform(0.05, 0.5)
        x = np.empty(n)
        x[0] = rng.normal(0, sig)
        for i in range(1, n):
            phi = np.exp(-(t[i] - t[i - 1]) / tau)
            x[i] = phi * x[i - 1] + rng.normal(0, sig * np.sqrt(1 - phi ** 2))
        m = 17.0 + x + rng.normal(0, 1, n) * e
    return t, m, e


CURVES = [synthetic(n, s, k) for n, s, k in [
    (6, 1, "sine"), (7, 2, "transient"), (12, 3, "drw"), (30, 4, "sine"), (61, 5, "drw"),
    (150, 6, "transient"), (250, 7, "sine"), (40, 8, "drw")]]


def turbofats_of(t, m, e) -> dict[str, float]:
    lc = pack([{1: (t, m, e)}])
    row = TurboFatsFamily().compute(lc, {})[0, :26]
    return dict(zip(TURBOFATS_FEATURES, row, strict=True))


# ---------------------------------------------------------------------------------------------
# independent reference implementations (numpy / scipy / statsmodels, from the formulas)
# ---------------------------------------------------------------------------------------------
def ref_iar_nll(phi, t, y, d):
    n = len(y)
    if not abs(phi) < 1:
        return 1e10
    sig, xhat, s_lam, s_err = 1.0, 0.0, 0.0, 0.0
    for i in range(n - 1):
        lam = sig + d[i + 1] ** 2
        dt = t[i + 1] - t[i]
        f = phi ** dt
        s_lam += np.log(lam)
        s_err += (y[i] - xhat) ** 2 / lam
        theta = f * sig
        xhat = f * xhat + theta / lam * (y[i] - xhat)
        sig = f * sig * f + (1 - phi ** (2 * dt)) - theta ** 2 / lam
    return (s_lam + s_err) / n


def ref_iar_phi(t, m, e):
    s = np.std(m, ddof=1)
    y, d = (m - m.mean()) / s, e / s
    res = optimize.minimize_scalar(ref_iar_nll, args=(t, y, d), bounds=(0, 1), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 50000})
    return res.x, res.fun, y, d


def ref_sf(t, m, e):
    i, j = np.triu_indices(len(t), 1)
    dt, dm2, es = t[j] - t[i], (m[i] - m[j]) ** 2, e[i] ** 2 + e[j] ** 2
    keep = (dt >= 5) & (dt <= 365)
    dt, dm2, es = dt[keep], dm2[keep], es[keep]
    bins = 10 ** np.arange(np.log10(5), np.log10(2000), 0.1)
    sf, tau = [], []
    for k in range(len(bins) - 1):
        sel = (dt >= bins[k]) & (dt < bins[k + 1])
        if sel.sum() and np.mean(dm2[sel] - es[sel]) >= 0:
            sf.append(np.sqrt(np.mean(dm2[sel] - es[sel])))
            tau.append((bins[k] + bins[k + 1]) / 2 / 365)
    if len(sf) < 2:
        return -0.5, -0.5
    sf, tau = np.array(sf), np.array(tau)
    sel = (tau <= 0.5) & (tau > 0.01)
    if sel.sum() == 0:
        return -0.5, -0.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slope, icpt = np.polyfit(np.log10(tau[sel]), np.log10(sf[sel]), 1)
    a, g = 10 ** icpt, slope
    if a < 0.005:
        a, g = 0.0, 0.0
    elif a > 15:
        a = 15.0
    return a, float(np.clip(g, -0.5, 3.0))


def ad_stat(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return stats.anderson(x).statistic


def ref_turbofats(t, m, e) -> dict[str, float]:
    n = len(m)
    srt = np.sort(m)
    k = math.ceil(0.05 * n)
    std, mean, med = np.std(m), np.mean(m), np.median(m)
    wmean = np.average(m, weights=1 / e ** 2)
    s1 = np.sqrt(np.sum((m - wmean) ** 2) / (n - 1))
    out = {"Amplitude": (np.median(srt[-k:]) - np.median(srt[:k])) / 2}
    out["AndersonDarling"] = 1 / (1 + np.exp(-10 * (ad_stat(m) - 0.3)))
    try:
        from statsmodels.tsa.stattools import acf
        ac = acf(m, nlags=n - 1, fft=False)
        below = np.flatnonzero(ac < np.exp(-1))
        out["Autocor_length"] = float(below[0]) if len(below) else float(n)
    except ImportError:
        pass
    out["Beyond1Std"] = np.mean(np.abs(m - wmean) > s1)
    outside = (m > mean + 2 * std) | (m < mean - 2 * std)
    out["Con"] = np.sum(outside[:-2] & outside[1:-1] & outside[2:]) / (n - 2)
    w = 1 / np.diff(t) ** 2
    out["Eta_e"] = np.sum(w * np.diff(m) ** 2) / np.sum(w) / np.var(m)
    p3, p97 = np.percentile(m, 3), np.percentile(m, 97)
    out["Gskew"] = np.median(m[m <= p3]) + np.median(m[m >= p97]) - 2 * med
    out["MaxSlope"] = np.max(np.abs(np.diff(m) / np.diff(t)))
    out["Mean"] = mean
    out["Meanvariance"] = std / mean
    out["MedianAbsDev"] = np.median(np.abs(m - med))
    amp10 = (m.max() - m.min()) / 10
    out["MedianBRP"] = np.mean((m < med + amp10) & (m > med - amp10))
    dl = np.diff(m[-30:])
    out["PairSlopeTrend"] = (np.sum(dl > 0) - np.sum(dl <= 0)) / 30
    out["PercentAmplitude"] = np.max(np.abs(m - med)) / med
    out["Q31"] = np.percentile(m, 75) - np.percentile(m, 25)
    cs = np.cumsum(m - mean) / (n * std)
    out["Rcs"] = cs.max() - cs.min()
    out["Skew"] = stats.skew(m)
    # SmallKurtosis written from the formula (not scipy): c1 Σz^4 - c2
    c1 = n * (n + 1) / ((n - 1) * (n - 2) * (n - 3))
    c2 = 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
    out["SmallKurtosis"] = c1 * np.sum(((m - mean) / std) ** 4) - c2
    out["Std"] = std
    dlt = np.sqrt(n / (n - 1)) * (m - wmean) / e
    out["StetsonK"] = np.sum(np.abs(dlt)) / np.sqrt(n) / np.sqrt(np.sum(dlt ** 2))
    out["Pvar"] = stats.chi2.cdf(np.sum((m - mean) ** 2 / e ** 2), n - 1)
    out["ExcessVar"] = np.sum((m - mean) ** 2 - e ** 2) / (n * mean ** 2)
    out["SF_ML_amplitude"], out["SF_ML_gamma"] = ref_sf(t, m, e)
    out["IAR_phi"] = ref_iar_phi(t, m, e)[0]
    out["LinearTrend"] = stats.linregress(t, m).slope
    return out


# ---------------------------------------------------------------------------------------------
# Turbo-FATS
# ---------------------------------------------------------------------------------------------
def test_names_and_shapes():
    fam = TurboFatsFamily()
    assert len(fam.names) == 52 and fam.names[0] == "Amplitude_1" and fam.names[26] == "Amplitude_2"
    assert GPDRWFamily().names == ["GP_DRW_sigma_1", "GP_DRW_tau_1", "GP_DRW_sigma_2", "GP_DRW_tau_2"]
    assert MHPSFamily().names[:5] == [f"{f}_1" for f in MHPS_FEATURES] and len(MHPSFamily().names) == 10
    assert IQRFamily().names == ["iqr_1", "iqr_2"]
    lc = pack([{1: CURVES[3], 2: CURVES[4]}, {2: CURVES[0]}])
    for fam in (TurboFatsFamily(), GPDRWFamily(), MHPSFamily(), IQRFamily()):
        out = fam.compute(lc, {})
        assert out.shape == (2, len(fam.names)) and out.dtype == np.float64


@pytest.mark.parametrize("idx", range(len(CURVES)))
def test_turbofats_against_numpy_scipy(idx):
    t, m, e = CURVES[idx]
    ours = turbofats_of(t, m, e)
    ref = ref_turbofats(t, m, e)
    for name, value in ref.items():
        tol = dict(rtol=1e-9, atol=1e-12)
        if name == "IAR_phi":
            tol = dict(rtol=0, atol=1e-6)
        elif name in ("SF_ML_amplitude", "SF_ML_gamma", "Pvar", "AndersonDarling"):
            tol = dict(rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(ours[name], value, err_msg=name, **tol)


def test_band_layout_and_min_points():
    t, m, e = CURVES[3]
    lc = pack([{1: CURVES[0], 2: (t, m, e)}])
    out = TurboFatsFamily().compute(lc, {})
    ref2 = turbofats_of(t, m, e)
    np.testing.assert_allclose(out[0, 26:], [ref2[f] for f in TURBOFATS_FEATURES], rtol=1e-12)
    assert np.isfinite(out[0, :26]).sum() >= 24  # band 1 with 6 points is computed
    lc5 = pack([{1: tuple(x[:5] for x in CURVES[0])}])
    assert np.isnan(TurboFatsFamily().compute(lc5, {})).all()  # <= 5 points: all NaN
    assert np.isnan(GPDRWFamily().compute(lc5, {})).all()
    # a band code absent from the packed curves gives NaN columns
    fam = TurboFatsFamily(bands=(1, 3))
    res = fam.compute(pack([{1: (t, m, e)}]), {})
    assert np.isfinite(res[0, :26]).any() and np.isnan(res[0, 26:]).all()


def test_iar_phi_objective_and_minimizer_match_scipy():
    for t, m, e in CURVES[2:]:
        phi_ref, f_ref, y, d = ref_iar_phi(t, m, e)
        for phi in (0.01, 0.3, phi_ref, 0.999):
            assert iar_phi_nll(phi, t, y, d) == pytest.approx(ref_iar_nll(phi, t, y, d), rel=1e-12)
        phi = turbofats_of(t, m, e)["IAR_phi"]
        assert 0.0 <= phi <= 1.0
        # same minimizer -> same argmin; at worst an equally good objective
        assert abs(phi - phi_ref) < 1e-6 or iar_phi_nll(phi, t, y, d) <= f_ref + 1e-12


def test_autocor_length_against_statsmodels():
    acf = pytest.importorskip("statsmodels.tsa.stattools").acf
    rng = np.random.default_rng(3)
    for n, rho in [(20, 0.0), (300, 0.95), (130, 0.999)]:
        x = np.empty(n)
        x[0] = rng.normal()
        for i in range(1, n):
            x[i] = rho * x[i - 1] + rng.normal()
        ac = acf(x, nlags=n - 1, fft=False)
        below = np.flatnonzero(ac < np.exp(-1))
        expected = below[0] if len(below) else n
        assert acf_length(x, np.exp(-1)) == expected
    assert acf_length(np.full(10, 3.0), np.exp(-1)) == 10  # constant: ACF is NaN -> N


def test_anderson_darling_and_chi2_against_scipy():
    rng = np.random.default_rng(4)
    for n in (6, 25, 400):
        x = np.sort(rng.standard_t(3, n))
        assert anderson_darling_statistic(x) == pytest.approx(ad_stat(x), rel=1e-9)
    x = np.sort(np.r_[np.zeros(2000), 1e3])  # extreme tail uses the asymptotic log-CDF
    assert anderson_darling_statistic(x) == pytest.approx(ad_stat(x), rel=1e-6)
    for a in (0.5, 2.5, 10.0, 150.0, 4999.5):
        for x in (0.0, 0.1 * a, 0.9 * a, a, 1.1 * a, 3 * a + 20):
            assert gammainc_lower(a, x) == pytest.approx(special.gammainc(a, x), rel=1e-10, abs=1e-14)
    for df in (5, 60, 999):
        for x in (1.0, df * 0.8, df * 1.0, df * 1.5):
            assert chi2_cdf(x, df) == pytest.approx(stats.chi2.cdf(x, df), rel=1e-10, abs=1e-14)


def test_structure_function_rules():
    # fewer than two populated bins -> -0.5, -0.5
    e = np.full(6, 0.01)
    m = np.array([18.0, 18.1, 17.9, 18.0, 18.2, 18.1])
    for t in (np.array([0.0, 0.1, 0.2, 6.0, 6.05, 6.1]),        # one bin
              np.array([0.0, 0.5, 1.0, 1.5, 249.0, 252.0])):    # two bins, both with tau > 0.5 yr
        f = turbofats_of(t + 58000, m, e)
        assert (f["SF_ML_amplitude"], f["SF_ML_gamma"]) == (-0.5, -0.5)
        assert ref_sf(t, m, e) == (-0.5, -0.5)
    # noise-dominated pairs: negative bins are skipped, amplitude clipping to 0
    t2, m2, e2 = synthetic(80, 11, "sine")
    m2 = 18.0 + np.random.default_rng(0).normal(0, 1e-4, 80)
    f = turbofats_of(t2, m2, np.full(80, 1e-5))
    assert (f["SF_ML_amplitude"], f["SF_ML_gamma"]) == pytest.approx(ref_sf(t2, m2, np.full(80, 1e-5)))
    assert SF_BIN_EDGES.shape == (27,) and SF_BIN_EDGES[0] == pytest.approx(5.0)


# ---------------------------------------------------------------------------------------------
# GP_DRW
# ---------------------------------------------------------------------------------------------
def dense_nll(theta, t, y, var):
    a, c = np.exp(theta)
    k = a * np.exp(-c * np.abs(t[:, None] - t[None, :])) + np.diag(var)
    chol = np.linalg.cholesky(k)
    z = np.linalg.solve(chol, y)
    return 0.5 * z @ z + np.log(np.diag(chol)).sum() + 0.5 * len(y) * np.log(2 * np.pi)


def test_drw_likelihood_and_gradient_match_dense_gp():
    for t, m, e in CURVES[1:6]:
        t0, y, var = t - t.min(), m - m.mean(), e ** 2
        for theta in [(0.0, 0.0), (-4.0, -3.0), (-2.0, 1.5), (1.0, -6.0)]:
            f, ga, gc = drw_nll_grad(theta[0], theta[1], t0, y, var)
            assert f == pytest.approx(dense_nll(np.array(theta), t0, y, var), rel=1e-10)
            h = 1e-6
            fd_a = (dense_nll(np.array([theta[0] + h, theta[1]]), t0, y, var)
                    - dense_nll(np.array([theta[0] - h, theta[1]]), t0, y, var)) / (2 * h)
            fd_c = (dense_nll(np.array([theta[0], theta[1] + h]), t0, y, var)
                    - dense_nll(np.array([theta[0], theta[1] - h]), t0, y, var)) / (2 * h)
            assert ga == pytest.approx(fd_a, rel=1e-5, abs=1e-6)
            assert gc == pytest.approx(fd_c, rel=1e-5, abs=1e-6)


def test_drw_optimum_matches_scipy_on_dense_likelihood():
    rng = np.random.default_rng(12)
    n, tau, sig2 = 120, 40.0, 0.09
    t = np.sort(rng.uniform(0, 1500, n))
    x = np.empty(n)
    x[0] = rng.normal(0, np.sqrt(sig2))
    for i in range(1, n):
        phi = np.exp(-(t[i] - t[i - 1]) / tau)
        x[i] = phi * x[i - 1] + rng.normal(0, np.sqrt(sig2 * (1 - phi ** 2)))
    e = np.full(n, 0.03)
    m = 18 + x + rng.normal(0, 0.03, n)
    out = GPDRWFamily().compute(pack([{2: (t, m, e)}]), {})[0]
    assert np.isnan(out[:2]).all()
    y = m - m.mean()
    res = optimize.minimize(dense_nll, [0.0, 0.0], args=(t - t.min(), y, e ** 2), method="L-BFGS-B")
    assert out[2] == pytest.approx(np.exp(res.x[0]), rel=2e-3)
    assert out[3] == pytest.approx(np.exp(-res.x[1]), rel=2e-3)
    ours = dense_nll(np.log([out[2], 1 / out[3]]), t - t.min(), y, e ** 2)
    assert ours <= res.fun + 1e-6


def test_drw_against_celerite2():
    celerite2 = pytest.importorskip("celerite2")
    from celerite2 import terms
    for t, m, e in CURVES[2:]:
        tt, y = t - t.min(), m - m.mean()
        gp = celerite2.GaussianProcess(terms.RealTerm(a=1.0, c=1.0), mean=0.0)

        def nll(p, gp=gp, tt=tt, e=e, y=y):
            gp.kernel = terms.RealTerm(a=np.exp(p[0]), c=np.exp(p[1]))
            gp.compute(tt, diag=e ** 2, quiet=True)
            return -gp.log_likelihood(y)

        for p in ([0.0, 0.0], [-3.0, -1.0]):
            assert drw_nll_grad(p[0], p[1], tt, y, e ** 2)[0] == pytest.approx(nll(p), rel=1e-9)
        la, lc, f = fit_drw(tt, y, e ** 2)
        sol = optimize.minimize(nll, [0.0, 0.0], method="L-BFGS-B")
        # the optimum is at least as good as ALeRCE's (flat directions may differ in position)
        assert f <= sol.fun + 1e-5 * max(1.0, abs(sol.fun))


# ---------------------------------------------------------------------------------------------
# MHPS
# ---------------------------------------------------------------------------------------------
def ref_mhps(mag, err, t, t1=100.0, t2=10.0, dt=5.0, mag0=19.0, eps=1.0):
    """Direct numpy transcription of the reference algorithm (float64 on float32 inputs)."""
    mag = mag.astype(np.float32).astype(float)
    err = err.astype(np.float32).astype(float)
    t = t.astype(np.float32).astype(float)
    flux = 10 ** (0.4 * (mag0 - mag))
    mu = flux.mean()
    flux = flux - mu

    def smooth(scale):
        s1 = 0.225 * scale / np.sqrt(1 + eps)
        s2 = (1 + eps) * s1
        half = max(6 * s1, 6 * dt)
        grid = np.arange(-half, half + 1e-9, 2 * half / 1000)
        g1, g2 = np.exp(-grid ** 2 / (2 * s1 ** 2)), np.exp(-grid ** 2 / (2 * s2 ** 2))
        step = 2 * half / 1000
        n1, n2 = g1.sum() * step, g2.sum() * step
        normf = ((g1 / n1 - g2 / n2) ** 2).sum() * step
        d = t[None, :] - t[:, None]
        inside = (d > -half) & (d < half)
        w1 = np.where(inside, np.exp(-d ** 2 / (2 * s1 ** 2)) / n1, 0)
        w2 = np.where(inside, np.exp(-d ** 2 / (2 * s2 ** 2)) / n2, 0)
        valid = ((d >= -half * 2 / 3) & (d <= half * 2 / 3)).sum(axis=1) > 3
        ik = (w1 @ flux) / w1.sum(axis=1) - (w2 @ flux) / w2.sum(axis=1)
        return np.mean(ik[valid] ** 2) / normf / mu ** 2, valid

    low, valid = smooth(t1)
    pn = np.mean(np.log(10) * 10 ** (-0.4 * (mag[valid] - mag0)) * 0.4 * err[valid]) ** 2 / mu ** 2
    low -= pn
    high, valid2 = smooth(t2)
    flag = 1.0
    if high > pn:
        high, flag = high - pn, 0.0
    return np.array([low / high, low, high, valid2.sum(), flag])


def test_mhps_against_numpy_transcription():
    fam = MHPSFamily()
    for t, m, e in CURVES[2:]:
        ours = fam.compute(pack([{1: (t, m, e)}]), {})[0, :5]
        ref = ref_mhps(m, e, t)
        assert ours[3] == ref[3] and ours[4] == ref[4]
        np.testing.assert_allclose(ours[:3], ref[:3], rtol=2e-3)


def test_mhps_nan_rules():
    fam = MHPSFamily()
    t, m, e = CURVES[3]
    lc = pack([{1: (t[:1], m[:1], e[:1])}, {1: (t, np.full_like(m, 18.0), e)}, {2: (t, m, e)}])
    out = fam.compute(lc, {})
    # one point: powers NaN, non_zero 0, flag 1 (as ALeRCE's features table)
    assert np.isnan(out[0, :3]).all() and out[0, 3] == 0 and out[0, 4] == 1
    # constant light curve: high == 0, ALeRCE's division by zero -> all NaN
    assert np.isnan(out[1, :5]).all()
    # band without detections: all NaN
    assert np.isnan(out[2, :5]).all() and np.isfinite(out[2, 5:]).all()


# ---------------------------------------------------------------------------------------------
# IQR
# ---------------------------------------------------------------------------------------------
def test_iqr_against_scipy():
    curves = [{1: c} for c in CURVES] + [{2: tuple(x[:1] for x in CURVES[0])}]
    out = IQRFamily().compute(pack(curves), {})
    for i, c in enumerate(CURVES):
        assert out[i, 0] == pytest.approx(stats.iqr(c[1]), rel=1e-12)
        assert out[i, 0] == np.percentile(c[1], 75) - np.percentile(c[1], 25)
        assert np.isnan(out[i, 1])
    assert out[-1, 1] == 0.0 and np.isnan(out[-1, 0])
    # identical to Turbo-FATS' Q31, as in ALeRCE's feature tables
    tf = TurboFatsFamily().compute(pack(curves[:-1]), {})
    np.testing.assert_array_equal(out[:-1, 0], tf[:, TURBOFATS_FEATURES.index("Q31")])


# ---------------------------------------------------------------------------------------------
# hostile input
# ---------------------------------------------------------------------------------------------
ALL = (TurboFatsFamily(), GPDRWFamily(), MHPSFamily(), IQRFamily())


def _no_inf(lc):
    for fam in ALL:
        out = fam.compute(lc, {})
        assert out.shape == (len(lc), len(fam.names))
        assert not np.isinf(out).any(), type(fam).__name__
        yield out


def test_hostile_light_curves():
    rng = np.random.default_rng(9)
    t = np.sort(rng.uniform(58000, 58100, 20))
    m = rng.normal(18, 0.2, 20)
    e = np.full(20, 0.05)
    dup = t.copy()
    dup[5:10] = dup[5]
    nan_err = e.copy()
    nan_err[3] = np.nan
    inf_err = e.copy()
    inf_err[4] = np.inf
    curves = [
        {1: (t[:1], m[:1], e[:1])},                       # one point
        {1: (t, np.full(20, 18.0), e)},                   # constant
        {1: (dup, m, e)},                                 # duplicate times
        {1: (t, m, nan_err)},                             # NaN error
        {1: (t, m, inf_err)},                             # inf error
        {1: (t, m, np.zeros(20))},                        # zero errors
        {1: (dup, np.full(20, 18.0), np.zeros(20))},      # everything degenerate at once
        {},                                               # no detections
        {1: (t, np.where(np.arange(20) == 7, np.nan, m), e)},  # NaN magnitude
        {1: (np.where(np.arange(20) == 19, np.nan, t), m, e)},  # NaN time (sorted last)
    ]
    tf, drw, mh, iq = _no_inf(pack(curves))
    assert np.isnan(tf[0]).all() and np.isnan(drw[0]).all()
    const = dict(zip(TURBOFATS_FEATURES, tf[1, :26], strict=True))
    assert const["Std"] == 0 and np.isnan(const["Skew"]) and np.isnan(const["IAR_phi"])
    assert const["Mean"] == 18.0 and const["Amplitude"] == 0
    assert np.isnan(tf[2, TURBOFATS_FEATURES.index("MaxSlope")])  # Δt = 0 -> inf -> NaN
    assert np.isnan(tf[7]).all() and np.isnan(mh[7]).all() and np.isnan(iq[7]).all()


def test_large_light_curve_is_finite():
    t, m, e = synthetic(10_000, 21, "drw")
    tf, drw, mh, iq = _no_inf(pack([{1: (t, m, e)}]))
    assert np.isfinite(tf[0, :26]).all()
    assert np.isfinite(drw[0, :2]).all() and np.isfinite(iq[0, 0])
    assert np.isfinite(mh[0, 3:5]).all()


def test_from_issues_light_curves():
    folder = shared("lightcurves", "light_curve_test_data", "from-issues")
    curves = []
    for path in sorted(folder.glob("*/*.csv")):
        df = pd.read_csv(path)
        if "mag" in df.columns:
            t, m, e = df["time"].to_numpy(), df["mag"].to_numpy(), df["magerr"].to_numpy()
        else:
            t, m, e = df["time"].to_numpy(), df["flux"].to_numpy(), df["fluxerr"].to_numpy()
        curves.append({1: (t, m, e)})
    assert len(curves) >= 10
    outs = list(_no_inf(pack(curves)))
    assert np.isfinite(outs[0][:, TURBOFATS_FEATURES.index("Std")]).all()


def test_single_thread_matches_parallel():
    lc_code = (
        "import numpy as np, sys\n"
        "sys.path.insert(0, {tests!r})\n"
        "from test_features_stats import pack, CURVES, ALL\n"
        "lc = pack([{{1: c, 2: CURVES[-1 - i]}} for i, c in enumerate(CURVES)])\n"
        "np.save(sys.argv[1], np.hstack([f.compute(lc, {{}}) for f in ALL]))\n"
    ).format(tests=str(ROOT / "tests"))
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    target = ROOT / "tests" / ".f2_single_thread.npy"
    try:
        subprocess.run([sys.executable, "-c", lc_code, str(target)], env=env, check=True,
                       cwd=ROOT, timeout=600)
        single = np.load(target)
    finally:
        target.unlink(missing_ok=True)
    lc = pack([{1: c, 2: CURVES[-1 - i]} for i, c in enumerate(CURVES)])
    here = np.hstack([f.compute(lc, {}) for f in ALL])
    np.testing.assert_array_equal(single, here)


# ---------------------------------------------------------------------------------------------
# golden ALeRCE features
# ---------------------------------------------------------------------------------------------
def test_golden_examples_consistency():
    """ALeRCE's example detections and feature table hold different objects, so this checks the
    definitions the table itself pins down, on our values for the example detections."""
    folder = shared("golden", "alerce_lc_classifier", "examples_data")
    from alerce.features.pack import pack_lightcurves
    from alerce.features.preprocess import preprocess_detections

    golden = pd.read_parquet(folder / "features_sample.parquet")
    det = pd.read_parquet(folder / "detections_sample.parquet").reset_index()
    obj = pd.read_parquet(folder / "object_info_sample.parquet").reset_index()
    lc = pack_lightcurves(preprocess_detections(det, obj))
    ours = pd.DataFrame(np.hstack([f.compute(lc, {}) for f in ALL]), index=lc.oids,
                        columns=sum((f.names for f in ALL), []))
    assert set(ours.columns) <= set(golden.columns)
    for b in (1, 2):
        # identities that hold in ALeRCE's table hold in ours
        for table in (golden, ours):
            both = table[f"Q31_{b}"].notna()
            assert both.sum() > 0
            np.testing.assert_array_equal(table.loc[both, f"iqr_{b}"], table.loc[both, f"Q31_{b}"])
        np.testing.assert_allclose(ours[f"Meanvariance_{b}"], ours[f"Std_{b}"] / ours[f"Mean_{b}"])
        # value domains of ALeRCE's table
        for col in ("MHPS_PN_flag", "Pvar", "AndersonDarling", "IAR_phi", "MedianBRP"):
            lo, hi = golden[f"{col}_{b}"].min(), golden[f"{col}_{b}"].max()
            assert ours[f"{col}_{b}"].dropna().between(lo - 1e-12, hi + 1e-12).all(), col
        assert ours[f"SF_ML_gamma_{b}"].dropna().between(-0.5, 3).all()
        assert ours[f"SF_ML_amplitude_{b}"].dropna().between(-0.5, 15).all()
        assert (ours[f"MHPS_non_zero_{b}"].fillna(0).to_numpy() <= lc.band_offsets[:, b] - lc.band_offsets[:, b - 1]).all()


def test_feature_subset_and_parameter_validation():
    lc = pack([{1: c, 2: CURVES[-1 - i]} for i, c in enumerate(CURVES)])
    full = TurboFatsFamily().compute(lc, {})
    subset = ["Std", "IAR_phi", "Mean"]
    fam = TurboFatsFamily(features=subset)
    assert fam.names == ["Std_1", "IAR_phi_1", "Mean_1", "Std_2", "IAR_phi_2", "Mean_2"]
    cols = [TurboFatsFamily().names.index(name) for name in fam.names]
    np.testing.assert_array_equal(fam.compute(lc, {}), full[:, cols])
    with pytest.raises(ValueError, match="unknown feature"):
        TurboFatsFamily(features=["Std", "Period"])
    with pytest.raises(ValueError, match="n_starts"):
        GPDRWFamily(n_starts=0)
    # one start (ALeRCE's) can only be as good as or worse than three
    one = GPDRWFamily(n_starts=1).compute(lc, {})
    three = GPDRWFamily().compute(lc, {})
    for i, (t, m, e) in enumerate(CURVES):
        tt, y = t - t.min(), m - m.mean()
        nll1 = drw_nll_grad(np.log(one[i, 0]), -np.log(one[i, 1]), tt, y, e ** 2)[0]
        nll3 = drw_nll_grad(np.log(three[i, 0]), -np.log(three[i, 1]), tt, y, e ** 2)[0]
        assert nll3 <= nll1 + 1e-9
