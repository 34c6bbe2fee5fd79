"""Point-vectorized AoV kernels of one band, and the constants the AoV kernels share.

One job: the weighted sums and the one-harmonic AoV of one band on a frequency grid, vectorized
across the band's points: :func:`_band_aov_grid` on the coarse grid (rotation recurrence,
float32 or float64 point sums, bands padded by :func:`_pad_band` to a multiple of :data:`_PAD`
points) and :func:`_band_aov_fine` on a short fine-tuning grid (float64, steps from
:func:`_fine_steps`). :data:`RESEED`, :data:`_BLOCK` and :data:`_KERNEL_OPTIONS` are shared with
the frequency-lane kernel (:mod:`alerce.features.period_lanes`); the multiband periodogram built
on these kernels is :mod:`alerce.features.periodogram`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from alerce.features.trig import sincos_cycles

#: Frequencies between two exact re-evaluations of cos/sin in the recurrence.
RESEED = 1024
#: Frequencies whose weighted sums are buffered before the (vectorized) AoV algebra.
_BLOCK = 256
#: Bands are padded with zero-weight points to a multiple of this many points.
_PAD = 8

#: numba options of the AoV kernels: no zero-division checks (the AoV algebra then vectorizes)
#: and reassociation for vectorized reductions.
_KERNEL_OPTIONS = {
    "nogil": True,
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"reassoc", "contract", "nsz", "arcp"},
}


@numba.njit(nogil=True, cache=True, inline="always")
def _aov_from_sums(sw, sc, ss, scc, scs, yc, ys):
    """Regression sum of squares of ``y ~ 1 + cos + sin`` from weighted sums (``sum w y = 0``)."""
    inv = 1.0 / sw
    mc = sc * inv
    ms = ss * inv
    ccc = scc - sc * mc
    css = (sw - scc) - ss * ms
    ccs = scs - sc * ms
    tol = 1e-12 * sw
    aov = 0.0
    if ccc > tol:
        ic = 1.0 / ccc
        aov = yc * yc * ic
        r = ccs * ic
        css2 = css - ccs * r
        ys2 = ys - yc * r
        if css2 > tol:
            aov += ys2 * ys2 / css2
    elif css > tol:
        aov = ys * ys / css
    return aov


@numba.njit(nogil=True, cache=True)
def _pad_band(t, w, wy):
    """Pad a band to a multiple of :data:`_PAD` points with zero-weight points at ``t = 0``.

    A padded point has ``w = wy = 0`` and contributes exactly 0 to every weighted sum; the
    compiled point loops then run without a scalar remainder.
    """
    n = t.size
    m = ((n + _PAD - 1) // _PAD) * _PAD
    tp = np.zeros(m)
    wp = np.zeros(m)
    wyp = np.zeros(m)
    tp[:n] = t
    wp[:n] = w
    wyp[:n] = wy
    return tp, wp, wyp


@numba.njit(**_KERNEL_OPTIONS, inline="always")
def _aov_block(sums, kb, sw, inv, tol, out, k0):
    """AoV of ``kb`` frequencies from their six sums (``sums[:, :kb]``) into ``out[k0:k0 + kb]``.

    The algebra of :func:`_aov_from_sums` in a loop of its own, so that LLVM vectorizes it.
    """
    for q in range(kb):
        sc = sums[0, q]
        ss = sums[1, q]
        ccc = sums[2, q] - sc * sc * inv
        css = (sw - sums[2, q]) - ss * ss * inv
        ccs = sums[3, q] - sc * ss * inv
        yc = sums[4, q]
        ys = sums[5, q]
        okc = ccc > tol
        ic = 1.0 / ccc if okc else 0.0
        r = ccs * ic
        css2 = css - ccs * r
        ys2 = ys - yc * r
        out[k0 + q] = yc * yc * ic + (ys2 * ys2 / css2 if css2 > tol else 0.0)


@numba.njit(**_KERNEL_OPTIONS)
def _band_aov_grid(t, w, wy, freqs, step_ids, steps, out, zero):
    """``out[k] = aov(freqs[k])`` for one band with the rotation recurrence.

    ``t`` is time relative to a reference, ``w = 1/err**2`` and ``wy = w * (y - weighted mean)``.
    ``step_ids[k]`` indexes ``steps`` with ``freqs[k + 1] - freqs[k]``. The rotated state and
    the per-frequency point sums have the type of ``zero`` (``np.float32(0)`` doubles the SIMD
    width; ``0.0`` for double precision); rotation factors and re-seeds are computed in double
    precision and rounded once, and the AoV algebra is always double precision.
    """
    n = t.size
    m = freqs.size
    ns = steps.size
    rc = np.full((ns, n), zero)
    rs = np.full((ns, n), zero)
    for s in range(ns):
        for i in range(n):
            rc[s, i], rs[s, i] = sincos_cycles(steps[s] * t[i])
    # the state is sqrt(w) (cos, sin): w c^2 and w c s are then plain products (one FMA each)
    c = np.full(n, zero)
    sn = np.full(n, zero)
    sq = np.full(n, zero)
    yq = np.full(n, zero)
    sq64 = np.empty(n)
    sw = 0.0
    for i in range(n):
        sw += w[i]
        sq64[i] = math.sqrt(w[i])
        sq[i] = sq64[i]
        yq[i] = wy[i] / sq64[i] if w[i] > 0.0 else 0.0
    inv = 1.0 / sw
    tol = 1e-12 * sw
    sums = np.empty((6, _BLOCK))
    for k0 in range(0, m, _BLOCK):
        if k0 % RESEED == 0:
            # exact cos/sin every RESEED frequencies, rotations in between
            f = freqs[k0]
            for i in range(n):
                cx, sx = sincos_cycles(f * t[i])
                c[i] = sq64[i] * cx
                sn[i] = sq64[i] * sx
        kb = min(_BLOCK, m - k0)
        for q in range(kb):
            sid = step_ids[k0 + q]  # (2-D indexing: a row view would cost a refcount per frequency)
            sc = zero
            ss = zero
            scc = zero
            scs = zero
            yc = zero
            ys = zero
            for i in range(n):
                ci = c[i]
                si = sn[i]
                sc += sq[i] * ci
                ss += sq[i] * si
                scc += ci * ci
                scs += ci * si
                yc += yq[i] * ci
                ys += yq[i] * si
                c[i] = ci * rc[sid, i] - si * rs[sid, i]
                sn[i] = ci * rs[sid, i] + si * rc[sid, i]
            sums[0, q] = sc
            sums[1, q] = ss
            sums[2, q] = scc
            sums[3, q] = scs
            sums[4, q] = yc
            sums[5, q] = ys
        _aov_block(sums, kb, sw, inv, tol, out, k0)


@numba.njit(nogil=True, cache=True)
def _fine_steps(fine):
    """Distinct steps of a fine grid (1 to 3 values on float32 grids) and the step of each point."""
    m = fine.size
    nd = 0
    dvals = np.empty(max(m - 1, 1))
    dids = np.empty(max(m - 1, 1), dtype=np.int64)
    for q in range(m - 1):
        d = fine[q + 1] - fine[q]
        j = 0
        while j < nd and dvals[j] != d:
            j += 1
        if j == nd:
            dvals[nd] = d
            nd += 1
        dids[q] = j
    return dvals[:nd], dids


@numba.njit(**_KERNEL_OPTIONS)
def _band_aov_fine(t, w, wy, fine, dvals, dids, out, work):
    """``out[q] = aov(fine[q])`` on a short fine grid.

    cos/sin are evaluated exactly at ``fine[0]`` and rotated by the (exact, float64) distinct
    steps ``dvals`` of the fine grid (:func:`_fine_steps`). ``work`` is scratch space of at
    least ``2 + 2 * dvals.size`` rows of ``t.size``.
    """
    n = t.size
    m = fine.size
    nd = dvals.size
    c = work[0]
    sn = work[1]
    for j in range(nd):
        for i in range(n):
            work[2 + 2 * j, i], work[3 + 2 * j, i] = sincos_cycles(dvals[j] * t[i])
    f = fine[0]
    sw = 0.0
    for i in range(n):
        c[i], sn[i] = sincos_cycles(f * t[i])
        sw += w[i]
    for q in range(m):
        sc = 0.0
        ss = 0.0
        scc = 0.0
        scs = 0.0
        yc = 0.0
        ys = 0.0
        for i in range(n):
            ci = c[i]
            si = sn[i]
            wc = w[i] * ci
            sc += wc
            ss += w[i] * si
            scc += wc * ci
            scs += wc * si
            yc += wy[i] * ci
            ys += wy[i] * si
        out[q] = _aov_from_sums(sw, sc, ss, scc, scs, yc, ys)
        if q + 1 < m:
            j = 2 + 2 * dids[q]
            for i in range(n):
                ci = c[i]
                si = sn[i]
                c[i] = ci * work[j, i] - si * work[j + 1, i]
                sn[i] = ci * work[j + 1, i] + si * work[j, i]
