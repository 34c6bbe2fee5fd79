"""Post-processing scans of one object's coarse-grid AoV arrays.

One job: on the ~20 000-frequency AoV sum and per-band AoV arrays, find the top local maxima,
the highest values (``PPE``), the argmaxes and the power-rate indices. The fast path reads the
arrays once for maxima per block of :data:`_SCAN` frequencies (:func:`_accumulate`,
:func:`_scan_asum`) and then only visits the blocks that matter (:func:`_argmax_blocks`,
:func:`_top_values_blocks`), with fine-tuned frequencies patched in without copying the grid
(:func:`_patched`, :func:`_nearest_patched`). The full scans (:func:`_top_values`,
:func:`_power_rate_indices`, ...) are the fallback path and the reference the block scans are
tested against; on the inputs they accept, the block scans give the same results.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# The post-processing needs, on the ~20 000-frequency arrays: the top local maxima of the AoV
# sum, its 100 highest values (PPE), its argmax (power rates) and each band's argmax. The arrays
# are scanned once, in blocks of _SCAN frequencies, for block maxima (and the local maxima); the
# fine-tuning then changes at most n_local_optima entries, whose blocks are re-scanned, and the
# top values and argmaxes only visit the blocks whose maximum can matter.

#: Block length of the post-processing scans.
_SCAN = 16


@numba.njit(nogil=True, cache=True, inline="always")
def _insert_top(val, idx, v, k):
    """Insert value ``v`` at index ``k`` into the descending top list ``val``/``idx``; new threshold."""
    q = val.size - 1
    while q > 0 and val[q - 1] < v:
        val[q] = val[q - 1]
        idx[q] = idx[q - 1]
        q -= 1
    val[q] = v
    idx[q] = k
    return val[val.size - 1]


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
                thr = _insert_top(val, idx, v, k)
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


# --------------------------------------------------------------------------------------------
# full scans: the fallback path (NaN or negative sums, fine-tuning that breaks the grid order),
# the PPE entropy, and the reference routines of the block scans
# --------------------------------------------------------------------------------------------


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
            thr = _insert_top(val, idx, v, k)
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
