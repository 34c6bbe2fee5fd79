"""HEALPix pixel indices (RING and NESTED schemes) of sky positions, vectorized in numpy.

Implements the ``ang2pix`` algorithm of Górski et al. (2005, ApJ 622, 759), section 4, for
``nside`` a power of two. Positions are (ra, dec) in degrees; ``theta = 90 - dec``, ``phi = ra``.
"""

from __future__ import annotations

import numpy as np

_TWOTHIRD = 2.0 / 3.0


def check_nside(nside: int) -> int:
    """``nside`` as int; raise ValueError unless it is a power of two in [1, 2**29]."""
    n = int(nside)
    if n < 1 or n > 2**29 or n & (n - 1):
        raise ValueError(f"nside must be a power of two between 1 and 2**29, got {nside!r}")
    return n


def npix(nside: int) -> int:
    """Number of pixels, ``12 * nside**2``."""
    return 12 * check_nside(nside) ** 2


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Interleave zeros between the bits of ``v`` (bit i -> bit 2i)."""
    v = v.astype(np.int64)
    out = np.zeros_like(v)
    for i in range(30):
        out |= ((v >> i) & 1) << (2 * i)
    return out


def _prepare(ra, dec):
    ra = np.asarray(ra, dtype="float64")
    dec = np.asarray(dec, dtype="float64")
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise ValueError("ra and dec must be finite (drop rows with NaN positions first)")
    if np.any(np.abs(dec) > 90):
        raise ValueError("dec must be within [-90, 90] degrees")
    z = np.sin(np.radians(dec))
    tt = np.mod(ra, 360.0) / 90.0  # phi / (pi/2) in [0, 4)
    tt = np.where(tt >= 4.0, 0.0, tt)
    return z, np.abs(z), tt


def ang2pix_ring(nside: int, ra, dec) -> np.ndarray:
    """RING-scheme pixel index of each (ra, dec) in degrees."""
    ns = check_nside(nside)
    z, za, tt = _prepare(ra, dec)
    out = np.empty(z.shape, dtype=np.int64)
    eq = za <= _TWOTHIRD
    # equatorial belt
    t1 = ns * (0.5 + tt[eq])
    t2 = ns * z[eq] * 0.75
    jp = np.floor(t1 - t2).astype(np.int64)
    jm = np.floor(t1 + t2).astype(np.int64)
    ir = ns + 1 + jp - jm
    kshift = 1 - (ir & 1)
    ip = (jp + jm - ns + kshift + 1) // 2
    ip = np.mod(ip, 4 * ns)
    ncap = 2 * ns * (ns - 1)
    out[eq] = ncap + (ir - 1) * 4 * ns + ip
    # polar caps
    pc = ~eq
    ttp, zp, zap = tt[pc], z[pc], za[pc]
    tp = ttp - np.floor(ttp)
    tmp = ns * np.sqrt(3.0 * (1.0 - zap))
    jp = np.floor(tp * tmp).astype(np.int64)
    jm = np.floor((1.0 - tp) * tmp).astype(np.int64)
    ir = jp + jm + 1
    ip = np.floor(ttp * ir).astype(np.int64)
    ip = np.mod(ip, 4 * ir)
    out[pc] = np.where(zp > 0, 2 * ir * (ir - 1) + ip, 12 * ns * ns - 2 * ir * (ir + 1) + ip)
    return out


def ang2pix_nest(nside: int, ra, dec) -> np.ndarray:
    """NESTED-scheme pixel index of each (ra, dec) in degrees."""
    ns = check_nside(nside)
    z, za, tt = _prepare(ra, dec)
    face = np.empty(z.shape, dtype=np.int64)
    ix = np.empty(z.shape, dtype=np.int64)
    iy = np.empty(z.shape, dtype=np.int64)
    eq = za <= _TWOTHIRD
    t1 = ns * (0.5 + tt[eq])
    t2 = ns * z[eq] * 0.75
    jp = np.floor(t1 - t2).astype(np.int64)
    jm = np.floor(t1 + t2).astype(np.int64)
    ifp, ifm = jp // ns, jm // ns
    face[eq] = np.where(ifp == ifm, ifp | 4, np.where(ifp < ifm, ifp, ifm + 8))
    ix[eq] = jm & (ns - 1)
    iy[eq] = ns - (jp & (ns - 1)) - 1
    pc = ~eq
    ttp, zp, zap = tt[pc], z[pc], za[pc]
    ntt = np.minimum(3, np.floor(ttp).astype(np.int64))
    tp = ttp - ntt
    tmp = ns * np.sqrt(3.0 * (1.0 - zap))
    jp = np.minimum(np.floor(tp * tmp).astype(np.int64), ns - 1)
    jm = np.minimum(np.floor((1.0 - tp) * tmp).astype(np.int64), ns - 1)
    north = zp >= 0
    face[pc] = np.where(north, ntt, ntt + 8)
    ix[pc] = np.where(north, ns - jm - 1, jp)
    iy[pc] = np.where(north, ns - jp - 1, jm)
    return face * ns * ns + _spread_bits(ix) + (_spread_bits(iy) << 1)


def ang2pix(nside: int, ra, dec, nest: bool = True) -> np.ndarray:
    """Pixel index in the NESTED (default) or RING scheme."""
    return ang2pix_nest(nside, ra, dec) if nest else ang2pix_ring(nside, ra, dec)


def pixel_resolution_deg(nside: int) -> float:
    """Square root of the pixel area, in degrees."""
    return float(np.degrees(np.sqrt(4 * np.pi / npix(nside))))


def offset_points(ra, dec, radius_deg: float, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the circle of ``radius_deg`` around each position (shape ``(len, n)``)."""
    ra = np.radians(np.asarray(ra, dtype="float64"))[:, None]
    dec = np.radians(np.asarray(dec, dtype="float64"))[:, None]
    r = np.radians(radius_deg)
    pa = np.linspace(0.0, 2 * np.pi, n, endpoint=False)[None, :]
    sd = np.sin(dec) * np.cos(r) + np.cos(dec) * np.sin(r) * np.cos(pa)
    dec2 = np.arcsin(np.clip(sd, -1.0, 1.0))
    ra2 = ra + np.arctan2(np.sin(pa) * np.sin(r) * np.cos(dec), np.cos(r) - np.sin(dec) * sd)
    return np.mod(np.degrees(ra2), 360.0), np.degrees(dec2)


def cone_pixels(nside: int, ra, dec, radius_deg: float, n: int = 16) -> np.ndarray:
    """NESTED pixels touched by small cones: the centre's pixel and those of ``n`` points on the
    circle of ``radius_deg`` (and of half that radius) around each position; unique, sorted.

    Exact for cones much smaller than a pixel except where a pixel corner clips the circle
    between two sample points (an arc shorter than ``2 pi r / n``).
    """
    ra = np.atleast_1d(np.asarray(ra, dtype="float64"))
    dec = np.atleast_1d(np.asarray(dec, dtype="float64"))
    pix = [ang2pix_nest(nside, ra, dec)]
    if radius_deg > 0 and len(ra):
        for frac in (1.0, 0.5):
            r2, d2 = offset_points(ra, dec, radius_deg * frac, n)
            pix.append(ang2pix_nest(nside, r2.ravel(), d2.ravel()))
    return np.unique(np.concatenate(pix))
