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
re-seeded exactly every :data:`RESEED` frequencies. By default (``precision="single"``) the rotated
state and the point sums are float32, which doubles the SIMD width (8 lanes on AVX2); the AoV
algebra on the sums is float64 (``precision="double"`` keeps everything in float64). The rotated
state is ``sqrt(w) (cos, sin)`` so that every weighted sum costs one fused multiply-add per point
(10 floating-point operations per point and frequency, rotation included); bands are padded with
zero-weight points to a multiple of :data:`_PAD` so the point loop has no scalar remainder, and
the kernels use ``error_model="numpy"`` so the per-frequency AoV algebra vectorizes (no division
checks). In single precision, bands of up to :data:`_LANE_MAX_POINTS` points use a second kernel
vectorized across 8 consecutive frequencies instead of across points (:func:`_band_aov_lanes`,
no per-frequency horizontal reductions). The post-processing scans the ~20 000-frequency arrays
once for block maxima and local maxima and then only visits the blocks that matter.
Objects run in parallel with ``numba.prange``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves
from alerce.features.trig import sincos_cycles

__all__ = [
    "PeriodFamily",
    "frequency_grid",
    "finetune_grid",
    "robust_loc",
    "mhaov_periodogram",
    "POWER_RATE_FACTORS",
    "POWER_RATE_NAMES",
]

#: Frequencies between two exact re-evaluations of cos/sin in the recurrence.
RESEED = 1024
#: Frequencies whose weighted sums are buffered before the (vectorized) AoV algebra.
_BLOCK = 256
#: Bands are padded with zero-weight points to a multiple of this many points.
_PAD = 8
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

#: numba options of the AoV kernels: no zero-division checks (the AoV algebra then vectorizes)
#: and reassociation for vectorized reductions.
_KERNEL_OPTIONS = {
    "nogil": True,
    "cache": True,
    "error_model": "numpy",
    "fastmath": {"reassoc", "contract", "nsz", "arcp"},
}


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
# per-band AoV
# --------------------------------------------------------------------------------------------


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
        # AoV of the block in a separate (vectorizable) loop: same algebra as _aov_from_sums
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


# --------------------------------------------------------------------------------------------
# per-band AoV, vectorized across frequencies (bands up to _LANE_MAX_POINTS points)
# --------------------------------------------------------------------------------------------
#
# ``_band_aov_grid`` vectorizes over points, so every frequency ends with a horizontal reduction
# of six SIMD accumulators, plus loop set-up and stores: ~10 ns per band and frequency, half of
# the kernel for ZTF-sized bands. The lane kernel vectorizes over 8 consecutive grid frequencies
# instead: each point holds the rotated state of a block of 8 frequencies (one 8 x float32
# vector for cos, one for sin), each of the six sums is one vector accumulator whose lanes are
# the sums of the 8 frequencies, and nothing is reduced. The lanes advance to the next block by
# different amounts: ``f[k + 8 + j] - f[k + j]`` takes 24 distinct values on the float32 grid but
# at most 2 in all but 10 of its 2500 blocks, so per point the cos and sin of the current pair
# of advances are stored as ``[a, b, a, b, ...]`` and each block picks its lanes with one
# in-lane permute (``vpermilps``, a shuffle port; a blend, which takes an FMA port, without AVX).
# The other blocks gather their factors lane by lane. With the permutes, the lane kernel costs
# ~0.3 ns per point and frequency against ~0.2 ns (plus the fixed ~10 ns) for the
# point-vectorized kernel: it is faster up to ~75 points per band.
# The kernel body is LLVM IR (``_lane_sums``): numba keeps vector accumulators of a loop in
# memory otherwise.

#: Frequencies per vector of the lane kernel (8 float32 lanes: one AVX register).
_LANES = 8
#: Points summed in float32 before the partial sums are added to float64 sums.
_FLUSH = 32
#: Bands with at most this many points use the lane kernel (single precision only).
_LANE_MAX_POINTS = 64
#: Lane-kernel record per point (float32): cos[8], sin[8] (state times sqrt(w)), sqrt(w)[8],
#: (w y / sqrt(w))[8], then the cos and the sin of the current pair of advances (a, b), each
#: stored as ``[a, b, a, b, a, b, a, b]``.
_REC = 48

_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_F32 = ir.FloatType()
_F64 = ir.DoubleType()
_V8F = ir.VectorType(_F32, _LANES)
_V8I = ir.VectorType(_I32, _LANES)
_V8D = ir.VectorType(_F64, _LANES)


def _lane_plan(freqs: np.ndarray) -> tuple:
    """Lane advances of a grid for :func:`_band_aov_lanes`; an empty plan if the grid is unfit.

    Block ``b`` holds frequencies ``8b .. 8b + 7``; lane ``j`` advances to the next block by
    ``f[8b + 8 + j] - f[8b + j]`` (exact in float64). Returns ``(adv, kind, pa, pb, mask, ids)``:
    the distinct advances and, per block, ``kind`` 0 (at most two distinct advances: ``adv[pa]``
    on the lanes where ``mask`` is 0, ``adv[pb]`` where it is 1; consecutive blocks share their
    pair where they can) or 1 (``adv[ids[b, j]]`` lane by lane). Lanes past the end of the grid
    copy lane 0; the last block never advances.
    """
    m = freqs.size
    nblk = -(-m // _LANES)
    empty = (
        np.zeros(0), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64), np.zeros((0, _LANES), dtype=np.int32),
        np.zeros((0, _LANES), dtype=np.int32),
    )
    if nblk < 2:
        return empty
    lo = np.arange(nblk - 1)[:, None] * _LANES + np.arange(_LANES)[None, :]
    hi = lo + _LANES
    adv = freqs[np.minimum(hi, m - 1)] - freqs[np.minimum(lo, m - 1)]
    adv = np.where(hi < m, adv, adv[:, :1])
    values, inverse = np.unique(adv, return_inverse=True)
    if values.size > 256:
        return empty
    ids = np.zeros((nblk, _LANES), dtype=np.int32)
    ids[:-1] = inverse.reshape(adv.shape)
    ids[-1] = ids[-2]
    kind = np.zeros(nblk, dtype=np.int64)
    pa = np.zeros(nblk, dtype=np.int64)
    pb = np.zeros(nblk, dtype=np.int64)
    start = 0
    used: set[int] = set()
    for b in range(nblk + 1):
        vals = set(ids[b].tolist()) if b < nblk else set()
        if b < nblk and len(used | vals) <= 2:
            used |= vals
            continue
        if used:  # the run start .. b - 1 uses the pair
            pa[start:b] = min(used)
            pb[start:b] = max(used)
        if len(vals) > 2:
            kind[b] = 1
            pa[b] = pb[b] = ids[b, 0]
            used = set()
            start = b + 1
        else:
            used = vals
            start = b
    mask = np.where(ids == pa[:, None], 0, 1).astype(np.int32)
    return values.astype(np.float64), kind, pa, pb, mask, ids


def _target_has_avx() -> bool:
    """Whether numba compiles for a CPU with AVX (``vpermilps``)."""
    features = numba.config.CPU_FEATURES
    if features is None:
        if numba.config.CPU_NAME not in (None, "host"):
            return False
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
    return "+avx" in features.split(",")


def _c64(v: int) -> ir.Constant:
    return ir.Constant(_I64, v)


def _c32(v: int) -> ir.Constant:
    return ir.Constant(_I32, v)


@intrinsic
def _lane_sums(typingctx, rec, tab, mask, ids, kind, b0, nb, col0, sums):
    """Six weighted sums of blocks ``b0 .. b0 + nb - 1`` into ``sums[:, col0 : col0 + 8 nb]``.

    ``rec`` holds the per-point records (:data:`_REC`), advanced to the next block in place;
    ``tab`` the float32 ``(cos, sin)`` of every advance per point, read by ``kind`` 1 blocks.
    ``sums`` rows: sum sqrt(w) c, sum sqrt(w) s, sum c^2, sum c s, sum yq c, sum yq s (float64).
    """
    sig = types.void(rec, tab, mask, ids, kind, b0, nb, col0, sums)

    def codegen(context, builder, signature, args):
        aty = signature.args
        rec_a, tab_a, mask_a, ids_a = (
            context.make_array(aty[j])(context, builder, args[j]) for j in range(4)
        )
        kind_v, b0_v, nb_v, col0_v = args[4:8]
        sums_a = context.make_array(aty[8])(context, builder, args[8])
        n = builder.extract_value(rec_a.shape, 0)
        rowlen = builder.extract_value(rec_a.shape, 1)
        nadv = builder.extract_value(tab_a.shape, 2)
        sstride = builder.udiv(builder.extract_value(sums_a.strides, 0), _c64(8))
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V8F, [_V8F] * 3), "llvm.fmuladd.v8f32"
        )
        permil = None
        if _target_has_avx():
            permil = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_V8F, [_V8F, _V8I]),
                "llvm.x86.avx.vpermilvar.ps.256",
            )
        zero32 = ir.Constant(_V8F, [ir.Constant(_F32, 0.0)] * _LANES)
        zero64 = ir.Constant(_V8D, [ir.Constant(_F64, 0.0)] * _LANES)
        accs = [cgutils.alloca_once(builder, _V8F) for _ in range(6)]  # promoted to registers
        nflush = builder.udiv(builder.add(n, _c64(_FLUSH - 1)), _c64(_FLUSH))

        def vptr(ptr, off, ty=_V8F):
            return builder.bitcast(builder.gep(ptr, [off]), ty.as_pointer())

        def splat(ptr, off):
            x = builder.load(builder.gep(ptr, [_c64(off)]))
            v = builder.insert_element(ir.Constant(_V8F, ir.Undefined), x, _c32(0))
            return builder.shuffle_vector(v, v, ir.Constant(_V8I, [0] * _LANES))

        def blocks(gather):
            with cgutils.for_range(builder, nb_v) as bl:
                b = builder.add(b0_v, bl.index)
                col = builder.add(col0_v, builder.mul(bl.index, _c64(_LANES)))
                lanes = builder.load(
                    vptr((ids_a if gather else mask_a).data, builder.mul(b, _c64(_LANES)), _V8I),
                    align=4,
                )
                pick_a = builder.icmp_signed("==", lanes, ir.Constant(_V8I, [0] * _LANES))
                with cgutils.for_range(builder, nflush) as fl:
                    i0 = builder.mul(fl.index, _c64(_FLUSH))
                    i1 = builder.add(i0, _c64(_FLUSH))
                    i1 = builder.select(builder.icmp_signed("<", i1, n), i1, n)
                    for a in accs:
                        builder.store(zero32, a)
                    with cgutils.for_range(builder, i1, start=i0) as pl:
                        p = builder.gep(rec_a.data, [builder.mul(pl.index, rowlen)])
                        c = builder.load(vptr(p, _c64(0)), align=32)
                        s = builder.load(vptr(p, _c64(8)), align=32)
                        sq = builder.load(vptr(p, _c64(16)), align=32)
                        yq = builder.load(vptr(p, _c64(24)), align=32)
                        if gather:
                            row = builder.gep(
                                tab_a.data, [builder.mul(pl.index, builder.mul(nadv, _c64(2)))]
                            )
                            rc = rs = ir.Constant(_V8F, ir.Undefined)
                            for j in range(_LANES):
                                a = builder.sext(builder.extract_element(lanes, _c32(j)), _I64)
                                cj = builder.load(builder.gep(row, [a]))
                                sj = builder.load(builder.gep(row, [builder.add(a, nadv)]))
                                rc = builder.insert_element(rc, cj, _c32(j))
                                rs = builder.insert_element(rs, sj, _c32(j))
                        elif permil is not None:
                            pair_c = builder.load(vptr(p, _c64(32)), align=32)
                            pair_s = builder.load(vptr(p, _c64(40)), align=32)
                            rc = builder.call(permil, [pair_c, lanes])
                            rs = builder.call(permil, [pair_s, lanes])
                        else:
                            rc = builder.select(pick_a, splat(p, 32), splat(p, 33))
                            rs = builder.select(pick_a, splat(p, 40), splat(p, 41))
                        acc = [builder.load(a) for a in accs]
                        new = (
                            builder.call(fma, [sq, c, acc[0]]),
                            builder.call(fma, [sq, s, acc[1]]),
                            builder.call(fma, [c, c, acc[2]]),
                            builder.call(fma, [c, s, acc[3]]),
                            builder.call(fma, [yq, c, acc[4]]),
                            builder.call(fma, [yq, s, acc[5]]),
                        )
                        for a, v in zip(accs, new):
                            builder.store(v, a)
                        c_next = builder.call(fma, [c, rc, builder.fneg(builder.fmul(s, rs))])
                        s_next = builder.call(fma, [s, rc, builder.fmul(c, rs)])
                        builder.store(c_next, vptr(p, _c64(0)), align=32)
                        builder.store(s_next, vptr(p, _c64(8)), align=32)
                    first = builder.icmp_signed("==", fl.index, _c64(0))
                    for j in range(6):
                        off = builder.add(builder.mul(_c64(j), sstride), col)
                        ptr = vptr(sums_a.data, off, _V8D)
                        old = builder.select(first, zero64, builder.load(ptr, align=8))
                        part = builder.fpext(builder.load(accs[j]), _V8D)
                        builder.store(builder.fadd(old, part), ptr, align=8)

        with builder.if_else(builder.icmp_signed("!=", kind_v, _c64(0))) as (gathered, paired):
            with gathered:
                blocks(True)
            with paired:
                blocks(False)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(**_KERNEL_OPTIONS)
def _band_aov_lanes(t, w, wy, freqs, step_ids, steps, plan, out):
    """``out[k] = aov(freqs[k])`` for one band, 8 frequencies per vector (float32 sums).

    Same inputs as :func:`_band_aov_grid` (no padding needed) plus the grid's
    :func:`_lane_plan`. The 8 lanes of a block are seeded exactly every :data:`RESEED`
    frequencies (lane 0 by ``sincos``, lanes 1-7 by float64 single-step rotations), then advanced
    one block at a time; point sums are float32 within :data:`_FLUSH` points, float64 beyond.
    """
    adv, kind, pa, pb, mask, ids = plan
    n = t.size
    m = freqs.size
    ns = steps.size
    na = adv.size
    r1c = np.empty((ns, n))
    r1s = np.empty((ns, n))
    for s in range(ns):
        for i in range(n):
            r1c[s, i], r1s[s, i] = sincos_cycles(steps[s] * t[i])
    tab = np.empty((n, 2, na), dtype=np.float32)
    for a in range(na):
        for i in range(n):
            cx, sx = sincos_cycles(adv[a] * t[i])
            tab[i, 0, a] = cx
            tab[i, 1, a] = sx
    rec = np.zeros((n, _REC), dtype=np.float32)
    sq64 = np.empty(n)
    sw = 0.0
    for i in range(n):
        sw += w[i]
        sq64[i] = math.sqrt(w[i])
        yq = wy[i] / sq64[i] if w[i] > 0.0 else 0.0
        for j in range(_LANES):
            rec[i, 16 + j] = sq64[i]
            rec[i, 24 + j] = yq
    inv = 1.0 / sw
    tol = 1e-12 * sw
    sums = np.empty((6, _BLOCK))
    cur_a = -1
    cur_b = -1
    for k0 in range(0, m, _BLOCK):
        if k0 % RESEED == 0:
            f = freqs[k0]
            for i in range(n):
                cx, sx = sincos_cycles(f * t[i])
                for j in range(_LANES):
                    rec[i, j] = sq64[i] * cx
                    rec[i, 8 + j] = sq64[i] * sx
                    if k0 + j + 1 < m:
                        sid = step_ids[k0 + j]
                        rc = r1c[sid, i]
                        rs = r1s[sid, i]
                        cx, sx = cx * rc - sx * rs, cx * rs + sx * rc
        kb = min(_BLOCK, m - k0)
        nbk = (kb + _LANES - 1) // _LANES
        b0 = k0 // _LANES
        j0 = 0
        while j0 < nbk:
            b = b0 + j0
            j1 = j0 + 1
            while j1 < nbk and kind[b0 + j1] == kind[b] and (
                kind[b] == 1 or (pa[b0 + j1] == pa[b] and pb[b0 + j1] == pb[b])
            ):
                j1 += 1
            if kind[b] == 0 and (pa[b] != cur_a or pb[b] != cur_b):
                cur_a = pa[b]
                cur_b = pb[b]
                for i in range(n):
                    for q in range(0, _LANES, 2):
                        rec[i, 32 + q] = tab[i, 0, cur_a]
                        rec[i, 33 + q] = tab[i, 0, cur_b]
                        rec[i, 40 + q] = tab[i, 1, cur_a]
                        rec[i, 41 + q] = tab[i, 1, cur_b]
            _lane_sums(rec, tab, mask, ids, kind[b], b, j1 - j0, j0 * _LANES, sums)
            j0 = j1
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


# --------------------------------------------------------------------------------------------
# one object
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# block scans of the coarse grid (post-processing)
# --------------------------------------------------------------------------------------------
#
# The post-processing needs, on the ~20 000-frequency arrays: the top local maxima of the AoV
# sum, its 100 highest values (PPE), its argmax (power rates) and each band's argmax. The arrays
# are scanned once, in blocks of _SCAN frequencies, for block maxima (and the local maxima); the
# fine-tuning then changes at most n_local_optima entries, whose blocks are re-scanned, and the
# top values and argmaxes only visit the blocks whose maximum can matter.

#: Block length of the post-processing scans.
_SCAN = 16


@numba.njit(nogil=True, cache=True)
def _accumulate(row, asum, bmax, first):
    """``asum = row`` (``first``) or ``asum += row``, and the block maxima of ``row`` into ``bmax``.

    Block maxima use ``v > max`` from ``-inf``: NaN never wins (an all-NaN block gives ``-inf``).
    """
    m = row.size
    for j in range(bmax.size):
        k0 = j * _SCAN
        mx = -np.inf
        if k0 + _SCAN <= m:  # full block: constant trip count, unrolled by LLVM
            if first:
                for q in range(_SCAN):
                    v = row[k0 + q]
                    asum[k0 + q] = v
                    mx = v if v > mx else mx
            else:
                for q in range(_SCAN):
                    v = row[k0 + q]
                    asum[k0 + q] += v
                    mx = v if v > mx else mx
        else:
            for k in range(k0, m):
                v = row[k]
                if first:
                    asum[k] = v
                else:
                    asum[k] += v
                mx = v if v > mx else mx
        bmax[j] = mx


@numba.njit(nogil=True, cache=True)
def _block_max(x, bmax, j):
    """Recompute ``bmax[j]``, the maximum of block ``j`` of ``x`` (NaN never wins)."""
    mx = -np.inf
    for k in range(j * _SCAN, min((j + 1) * _SCAN, x.size)):
        v = x[k]
        mx = v if v > mx else mx
    bmax[j] = mx


@numba.njit(nogil=True, cache=True)
def _scan_asum(p, bmax, n_top):
    """Block maxima of ``p`` into ``bmax``, and its top strict local maxima.

    Returns ``(top, count, clean)``: what :func:`_top_local_maxima` returns (same order, same
    ties) and whether ``p`` is free of NaN and negative values (an AoV sum always is, unless
    the input overflows). The local maxima are counted in a branch-free pass; the
    insertion pass only visits blocks whose maximum exceeds the current n_top-th local maximum.
    """
    m = p.size
    for j in range(bmax.size):
        k0 = j * _SCAN
        mx = -np.inf
        if k0 + _SCAN <= m:  # constant trip count: unrolled
            for q in range(_SCAN):
                v = p[k0 + q]
                mx = v if v > mx else mx
        else:
            for k in range(k0, m):
                v = p[k]
                mx = v if v > mx else mx
        bmax[j] = mx
    count = 0
    bad = (not p[0] >= 0.0) + (not p[m - 1] >= 0.0)
    for k in range(1, m - 1):
        v = p[k]
        count += (v > p[k - 1]) & (v > p[k + 1])
        bad += v < 0.0 or v != v
    idx = np.full(n_top, -1, dtype=np.int64)
    val = np.full(n_top, -np.inf)
    thr = -np.inf
    for j in range(bmax.size):
        if not bmax[j] > thr:
            continue
        for k in range(max(j * _SCAN, 1), min((j + 1) * _SCAN, m - 1)):
            v = p[k]
            if v > thr and v > p[k - 1] and v > p[k + 1]:
                q = n_top - 1
                while q > 0 and val[q - 1] < v:
                    val[q] = val[q - 1]
                    idx[q] = idx[q - 1]
                    q -= 1
                val[q] = v
                idx[q] = k
                thr = val[n_top - 1]
    return idx[: min(count, n_top)], count, bad == 0


@numba.njit(nogil=True, cache=True)
def _argmax_blocks(x, bmax):
    """``argmax`` as the loop ``if x[k] > x[best]: best = k`` returns it, using block maxima."""
    if x.size == 0 or x[0] != x[0]:
        return 0  # nothing compares greater than a NaN at index 0
    best = 0
    for j in range(1, bmax.size):
        if bmax[j] > bmax[best]:
            best = j
    top = bmax[best]
    for k in range(best * _SCAN, min((best + 1) * _SCAN, x.size)):
        if x[k] == top:
            return k
    return 0  # all -inf / NaN: the loop keeps index 0


@numba.njit(nogil=True, cache=True)
def _top_values_blocks(x, bmax, n):
    """The ``n`` largest values of a NaN-free, non-negative ``x`` (any order), from block maxima.

    Same multiset of values as :func:`_top_values`. Non-negative doubles order like their int64
    bit patterns: a 1/16-octave histogram of the block maxima gives a lower bound of the n-th
    largest value (``n`` blocks reach it), the values above it in those blocks are the
    candidates, and the exact n-th largest candidate is found by bisection on the bit patterns.
    """
    m = x.size
    if m <= n:
        return x.copy()
    nblk = bmax.size
    xi = x.view(np.int64)
    bi = bmax.view(np.int64)
    top_bits = bi[0]
    for j in range(1, nblk):
        top_bits = max(top_bits, bi[j])
    key = top_bits >> 48
    hist = np.zeros(256, dtype=np.int64)
    for j in range(nblk):
        hist[min(key - (bi[j] >> 48), 255)] += 1
    cum = 0
    d = 0
    while d < 255:
        cum += hist[d]
        if cum >= n:
            break
        d += 1
    lo = (key - d) << 48 if d < 255 else 0
    cap = 0
    for j in range(nblk):
        if bi[j] >= lo:
            cap += _SCAN
    cand = np.empty(cap, dtype=np.int64)
    c = 0
    for j in range(nblk):
        if bi[j] >= lo:
            for k in range(j * _SCAN, min((j + 1) * _SCAN, m)):
                v = xi[k]
                if v >= lo:
                    cand[c] = v
                    c += 1
    # invariant: at least n candidates are >= lo, fewer than n are >= hi
    hi = top_bits + 1
    while hi - lo > 1:
        mid = lo + (hi - lo) // 2
        cnt = 0
        for q in range(c):
            cnt += cand[q] >= mid
        if cnt >= n:
            lo = mid
        else:
            hi = mid
    out = np.empty(n)
    oi = out.view(np.int64)
    r = 0
    for q in range(c):
        if cand[q] > lo:
            oi[r] = cand[q]
            r += 1
    while r < n:  # ties at the n-th largest value
        oi[r] = lo
        r += 1
    return out


@numba.njit(nogil=True, cache=True, inline="always")
def _patched(freqs, chg_k, chg_f, nchg, k):
    """``freqs[k]``, or its fine-tuned replacement."""
    for j in range(nchg):
        if chg_k[j] == k:
            return chg_f[j]
    return freqs[k]


@numba.njit(nogil=True, cache=True)
def _nearest_patched(freqs, chg_k, chg_f, nchg, target):
    """:func:`_nearest_index` on the fine-tuned (still sorted) grid, without copying it."""
    m = freqs.size
    lo = 0
    hi = m
    while lo < hi:  # np.searchsorted(freq, target, side="left")
        mid = (lo + hi) // 2
        if _patched(freqs, chg_k, chg_f, nchg, mid) < target:
            lo = mid + 1
        else:
            hi = mid
    i = lo
    if i == 0:
        return 0
    if target > _patched(freqs, chg_k, chg_f, nchg, m - 1):
        return m - 1
    f_lo = _patched(freqs, chg_k, chg_f, nchg, i - 1)
    mid = (f_lo + _patched(freqs, chg_k, chg_f, nchg, i)) / 2.0
    if target > mid:
        return i
    return i - 1


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
def _top_local_maxima(p, n_top):
    """Indices of the ``n_top`` highest strict local maxima, highest first (fewer if absent)."""
    m = p.size
    idx = np.full(n_top, -1, dtype=np.int64)
    val = np.full(n_top, -np.inf)
    count = 0
    thr = -np.inf
    for k in range(1, m - 1):
        v = p[k]
        is_max = (v > p[k - 1]) & (v > p[k + 1])
        count += is_max  # branch-free count; the insertion branch below is rarely taken
        if v > thr and is_max:
            j = n_top - 1
            while j > 0 and val[j - 1] < v:
                val[j] = val[j - 1]
                idx[j] = idx[j - 1]
                j -= 1
            val[j] = v
            idx[j] = k
            thr = val[n_top - 1]
    return idx[: min(count, n_top)], count


@numba.njit(nogil=True, cache=True)
def _nearest_index(freq, target):
    """ALeRCE's power-rate rule: searchsorted, left neighbour unless beyond the midpoint."""
    m = freq.size
    i = np.searchsorted(freq, target)
    if i == 0:
        return 0
    if target > freq[m - 1]:
        return m - 1
    mid = (freq[i - 1] + freq[i]) / 2.0
    if target > mid:
        return i
    return i - 1


@numba.njit(nogil=True, cache=True)
def _power_rate_indices(freq, key, factors):
    """Index of the maximum of ``key`` and, per factor, of the grid frequency nearest f*/factor.

    Indices refer to ``freq`` as given (sorted internally when fine-tuning broke the order).
    """
    m = freq.size
    best = 0
    for k in range(1, m):
        if key[k] > key[best]:
            best = k
    sorted_ok = True
    for k in range(m - 1):
        if freq[k + 1] < freq[k]:
            sorted_ok = False
            break
    out = np.empty(factors.size, dtype=np.int64)
    period = 1.0 / freq[best]
    if sorted_ok:
        for j in range(factors.size):
            out[j] = _nearest_index(freq, 1.0 / (period * factors[j]))
    else:
        order = np.argsort(freq)
        fs = freq[order]
        for j in range(factors.size):
            out[j] = order[_nearest_index(fs, 1.0 / (period * factors[j]))]
    return best, out


@numba.njit(nogil=True, cache=True)
def _power_rates(freq, p, factors, out):
    """``out[j] = P(f*/factor_j) / P(f*)`` on a periodogram ``p`` (ALeRCE rule)."""
    best, idx = _power_rate_indices(freq, p, factors)
    for j in range(factors.size):
        out[j] = p[idx[j]] / p[best]


@numba.njit(nogil=True, cache=True, inline="always")
def _sift_down(heap, j, n):
    """Restore the min-heap property below position ``j`` of ``heap[:n]``."""
    v = heap[j]
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and heap[c + 1] < heap[c]:
            c += 1
        if heap[c] < v:
            heap[j] = heap[c]
            j = c
        else:
            break
    heap[j] = v


@numba.njit(nogil=True, cache=True)
def _top_values(x, n):
    """The ``n`` largest values of ``x`` (any order; all of ``x`` when shorter), via a min-heap."""
    m = x.size
    if m <= n:
        return x.copy()
    heap = x[:n].copy()
    for j in range(n // 2 - 1, -1, -1):
        _sift_down(heap, j, n)
    k = n
    # blocks of 8 whose maximum cannot enter the heap are skipped (same result, fewer branches)
    while k + 8 <= m:
        bm = -np.inf  # NaN never wins a comparison, as in the per-element test
        for j in range(k, k + 8):
            v = x[j]
            bm = v if v > bm else bm
        if bm > heap[0]:
            for j in range(k, k + 8):
                if x[j] > heap[0]:
                    heap[0] = x[j]
                    _sift_down(heap, 0, n)
        k += 8
    for j in range(k, m):
        if x[j] > heap[0]:
            heap[0] = x[j]
            _sift_down(heap, 0, n)
    return heap


@numba.njit(nogil=True, cache=True)
def _entropy_ppe(top, n_best):
    """``1 - H(top + 0.01 normalized) / ln(n_best)``."""
    top = top + 1e-2
    s = top.sum()
    h = 0.0
    for v in top:
        q = v / s
        h -= q * math.log(q)
    return 1.0 - h / math.log(n_best)


@numba.njit(nogil=True, cache=True)
def _ppe(p, n_best):
    """PPE of a periodogram ``p`` over its ``n_best`` highest values."""
    return _entropy_ppe(_top_values(p, n_best), n_best)


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

