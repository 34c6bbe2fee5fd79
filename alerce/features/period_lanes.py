"""Coarse-grid AoV kernel vectorized across 8 consecutive frequencies (small bands).

One job: ``out[k] = aov(freqs[k])`` for one band of at most :data:`_LANE_MAX_POINTS` points in
single precision, 8 grid frequencies per float32 vector (:func:`_band_aov_lanes`), with the
grid's lane plan (:func:`_lane_plan`) and the kernel body written as LLVM vector IR
(:func:`_lane_sums`). It gives the same values as the point-vectorized kernel
(:func:`alerce.features.period_kernels._band_aov_grid`) up to float32 rounding;
:mod:`alerce.features.periodogram` chooses between the two per band.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from alerce.features.period_kernels import _BLOCK, _KERNEL_OPTIONS, RESEED, _aov_block
from alerce.features.trig import sincos_cycles

# ``period_kernels._band_aov_grid`` vectorizes over points, so every frequency ends with a
# horizontal reduction of six SIMD accumulators, plus loop set-up and stores: ~10 ns per band and
# frequency, half of the kernel for ZTF-sized bands. The lane kernel vectorizes over 8 consecutive
# grid frequencies instead: each point holds the rotated state of a block of 8 frequencies (one 8
# x float32 vector for cos, one for sin), each of the six sums is one vector accumulator whose
# lanes are the sums of the 8 frequencies, and nothing is reduced. The lanes advance to the next
# block by different amounts: ``f[k + 8 + j] - f[k + j]`` takes 24 distinct values on the float32
# grid but at most 2 in all but 10 of its 2500 blocks, so per point the cos and sin of the current
# pair of advances are stored as ``[a, b, a, b, ...]`` and each block picks its lanes with one
# in-lane permute (``vpermilps``, a shuffle port; a blend, which takes an FMA port, without AVX).
# The other blocks gather their factors lane by lane. With the permutes, the lane kernel costs
# ~0.3 ns per point and frequency against ~0.2 ns (plus the fixed ~10 ns) for the point-vectorized
# kernel: it is faster up to ~75 points per band.
# The kernel body is LLVM IR (``_lane_sums``): numba keeps vector accumulators of a loop in memory
# otherwise.

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

    Same inputs as :func:`~alerce.features.period_kernels._band_aov_grid` (no padding needed)
    plus the grid's :func:`_lane_plan`. The 8 lanes of a block are seeded exactly every
    :data:`~alerce.features.period_kernels.RESEED` frequencies (lane 0 by ``sincos``, lanes 1-7
    by float64 single-step rotations), then advanced one block at a time; point sums are float32
    within :data:`_FLUSH` points, float64 beyond.
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
        _aov_block(sums, kb, sw, inv, tol, out, k0)
