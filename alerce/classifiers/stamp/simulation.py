"""Private simulator of ZTF-like first alerts (cutouts + metadata) for the five stamp classes.

Half of the cutouts come from the project simulator
(:func:`alerce.simulate.stamps.make_stamps`, when importable) and half from this module's own
vectorized generator, for variety; the metadata always come from this module (the project
simulator's alert writer does not model PS1 cross-matches per stamp class). Images are 63x63
float32 counts with Gaussian PSFs, exponential-disc host galaxies, field stars and Gaussian noise;
metadata follow the rough ZTF distributions of each class. It is a *toy* sky: it makes the classes
separable in the same ways the real ones are (hosts, offsets, stellarity, sky position, artefacts)
but its numbers are not calibrated against the survey.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CLASSES, STAMP_SIZE

PIXEL_SCALE = 1.01  # arcsec / pixel (ZTF)
_Y, _X = np.mgrid[0:STAMP_SIZE, 0:STAMP_SIZE].astype(np.float32)
_C = (STAMP_SIZE - 1) / 2.0


@dataclass
class SimulatedAlerts:
    """Simulated alerts: ``alerts`` frame, raw ``(n, 3, 63, 63)`` cutouts, labels, and optionally
    the ``stamps`` frame with gzipped-FITS bytes."""

    alerts: pd.DataFrame
    raw: np.ndarray
    labels: np.ndarray
    stamps: pd.DataFrame | None = None


def _gauss(x0, y0, fwhm_px, flux, ellip=None, angle=None):
    """(n, 63, 63) elliptical Gaussians with total ``flux``."""
    x0, y0, f, flux = (np.asarray(a, np.float32)[:, None, None] for a in (x0, y0, fwhm_px, flux))
    s = f / 2.3548
    q = 1.0 if ellip is None else (1.0 - np.asarray(ellip, np.float32))[:, None, None]
    th = 0.0 if angle is None else np.asarray(angle, np.float32)[:, None, None]
    dx, dy = _X - x0, _Y - y0
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    r2 = (u / s) ** 2 + (v / (s * q)) ** 2
    return flux * np.exp(-0.5 * r2) / (2 * np.pi * s * s * q)


def _galaxy(x0, y0, r_e_px, flux, ellip, angle):
    """(n, 63, 63) exponential discs (unnormalized shape scaled to roughly ``flux``)."""
    x0, y0, re, flux, q, th = (np.asarray(a, np.float32)[:, None, None]
                               for a in (x0, y0, r_e_px, flux, 1 - np.asarray(ellip), angle))
    dx, dy = _X - x0, _Y - y0
    u = dx * np.cos(th) + dy * np.sin(th)
    v = -dx * np.sin(th) + dy * np.cos(th)
    r = np.sqrt(u**2 + (v / q) ** 2)
    return flux * np.exp(-1.678 * r / re) / (2 * np.pi * (re / 1.678) ** 2 * q)


def _field_stars(n, rng, fwhm_sci, fwhm_tmp, max_stars=4):
    """Unrelated field stars, identical in science and template (each at its own seeing)."""
    sci = np.zeros((n, STAMP_SIZE, STAMP_SIZE), np.float32)
    tmp = np.zeros_like(sci)
    for _ in range(max_stars):  # loop over star slots, vectorized over the n images
        present = rng.random(n) < 0.45
        flux = np.where(present, 10 ** rng.uniform(2.5, 4.5, n), 0.0)
        x, y = rng.uniform(0, 62, n), rng.uniform(0, 62, n)
        sci += _gauss(x, y, fwhm_sci, flux)
        tmp += _gauss(x, y, fwhm_tmp, flux)
    return sci, tmp


def _sky_positions(n, rng, kind):
    """ra/dec (deg) drawn uniformly on the ZTF sky (dec > -30), concentrated towards the
    galactic plane (``kind="plane"``) or the ecliptic (``kind="ecliptic"``)."""
    from alerce.classifiers.stamp.features import _rotation

    lon = rng.uniform(0, 360, n)
    if kind == "plane":
        lat = np.clip(rng.normal(0, 12, n), -89, 89)
    elif kind == "ecliptic":
        lat = np.clip(rng.normal(0, 8, n), -89, 89)
    else:
        lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    frame = {"plane": "galactic", "ecliptic": "ecliptic"}.get(kind)
    lon_r, lat_r = np.radians(lon), np.radians(lat)
    v = np.stack([np.cos(lat_r) * np.cos(lon_r), np.cos(lat_r) * np.sin(lon_r), np.sin(lat_r)], 1)
    if frame is not None:
        v = v @ _rotation(frame)  # target -> ICRS (inverse rotation = transpose)
    ra = np.mod(np.degrees(np.arctan2(v[:, 1], v[:, 0])), 360)
    dec = np.degrees(np.arcsin(np.clip(v[:, 2], -1, 1)))
    dec = np.where(dec < -30, -dec - 60, dec)  # fold into the ZTF sky
    return ra, dec


#: Sub-classes of ``alerce.simulate`` drawn for each stamp class.
SIMULATOR_CLASSES: dict[str, tuple[str, ...]] = {
    "AGN": ("AGN", "QSO", "Blazar"),
    "SN": ("SNIa", "SNII", "SNIbc", "SLSN"),
    "VS": ("CEP", "DSCT", "E", "LPV", "Periodic-Other", "RRL"),
    "asteroid": ("asteroid",),
    "bogus": ("bogus",),
}


def _simulator_images(name, rng, hosted, off, ang) -> np.ndarray:
    """Cutouts from :func:`alerce.simulate.stamps.make_stamps` (one call per alert)."""
    from alerce.simulate.stamps import make_stamps

    subs = SIMULATOR_CLASSES[name]
    out = np.empty((len(hosted), 3, STAMP_SIZE, STAMP_SIZE), np.float32)
    for i in range(len(hosted)):
        kwargs = {}
        if name == "SN":
            px = off[i] / PIXEL_SCALE
            kwargs = {"host_offset": (-px * np.cos(ang[i]), -px * np.sin(ang[i]))}
            if not hosted[i]:
                kwargs["host_flux"] = 0.0
        out[i] = np.stack(make_stamps(subs[rng.integers(len(subs))], rng, **kwargs))
    return out


def _simulator_available() -> bool:
    try:
        from alerce.simulate.stamps import make_stamps  # noqa: F401
    except Exception:
        return False
    return True


def _simulate_class(name: str, n: int, rng: np.random.Generator, simulator_fraction: float = 0.0):
    u = rng.uniform
    fwhm_as = u(1.6, 3.5, n)
    fwhm_sci = fwhm_as / PIXEL_SCALE
    fwhm_tmp = fwhm_sci * u(0.7, 0.9, n)
    sig_sci = u(4, 15, n).astype(np.float32)
    sig_tmp = sig_sci * u(0.3, 0.6, n)
    bkg_sci, bkg_tmp = u(50, 800, n), u(50, 800, n)
    stars_sci, stars_tmp = _field_stars(n, rng, fwhm_sci, fwhm_tmp)
    cx, cy = _C + rng.normal(0, 0.4, n), _C + rng.normal(0, 0.4, n)
    src_sci = np.zeros((n, STAMP_SIZE, STAMP_SIZE), np.float32)
    src_tmp = np.zeros_like(src_sci)
    diff = np.zeros_like(src_sci)
    mag = u(17.0, 20.5, n)
    flux = 10 ** (0.4 * (26.0 - mag))
    meta = {}
    sign = np.ones(n)
    hosted, off, ang = np.zeros(n, bool), np.zeros(n), np.zeros(n)
    if name == "SN":
        hosted = rng.random(n) < 0.85
        off = u(0.8, 8.0, n)
        ang = u(0, 2 * np.pi, n)
        gx, gy = cx + off * np.cos(ang), cy + off * np.sin(ang)
        gflux = np.where(hosted, flux * u(1, 12, n), 0.0)
        re, el, pa = u(2, 7, n), u(0, 0.6, n), u(0, np.pi, n)
        src_sci = _galaxy(gx, gy, re, gflux, el, pa) + _gauss(cx, cy, fwhm_sci, flux)
        src_tmp = _galaxy(gx, gy, re, gflux, el, pa)
        diff = _gauss(cx, cy, fwhm_sci, flux)
        meta.update(distpsnr1=np.where(hosted, off * PIXEL_SCALE, u(3, 25, n)),
                    sgscore1=np.where(hosted, u(0, 0.25, n), u(0, 1, n)),
                    ndethist=rng.integers(1, 4, n), ncovhist=rng.integers(1, 1500, n),
                    chinr=np.where(hosted, u(1.5, 8, n), u(0.5, 3, n)),
                    sharpnr=np.where(hosted, u(0.1, 0.9, n), u(-0.2, 0.3, n)), classtar=u(0.6, 1, n))
        sky = "extragalactic"
    elif name == "AGN":
        gflux = flux * u(2, 15, n)
        re, el, pa = u(1.5, 5, n), u(0, 0.5, n), u(0, np.pi, n)
        nucleus = flux * u(1, 5, n)
        sign = np.where(rng.random(n) < 0.75, 1.0, -1.0)
        dflux = sign * flux * u(0.3, 1.0, n)
        host = _galaxy(cx, cy, re, gflux, el, pa)
        src_tmp = host + _gauss(cx, cy, fwhm_tmp, nucleus)
        src_sci = host + _gauss(cx, cy, fwhm_sci, nucleus + dflux)
        diff = _gauss(cx, cy, fwhm_sci, dflux)
        meta.update(distpsnr1=u(0, 0.6, n), sgscore1=u(0.05, 0.7, n),
                    ndethist=rng.integers(2, 60, n), ncovhist=rng.integers(200, 2500, n),
                    chinr=u(0.8, 4, n), sharpnr=u(-0.05, 0.35, n), classtar=u(0.5, 1, n))
        sky = "extragalactic"
    elif name == "VS":
        star = flux * 10 ** u(0, 1.5, n)
        sign = np.where(rng.random(n) < 0.6, 1.0, -1.0)
        dflux = sign * np.minimum(flux, 0.9 * star)
        src_tmp = _gauss(cx, cy, fwhm_tmp, star)
        src_sci = _gauss(cx, cy, fwhm_sci, star + dflux)
        diff = _gauss(cx, cy, fwhm_sci, dflux)
        meta.update(distpsnr1=u(0, 0.5, n), sgscore1=u(0.75, 1.0, n),
                    ndethist=rng.integers(2, 200, n), ncovhist=rng.integers(100, 3000, n),
                    chinr=u(0.3, 1.5, n), sharpnr=u(-0.1, 0.1, n), classtar=u(0.8, 1, n))
        sky = "plane"
    elif name == "asteroid":
        el, pa = u(0, 0.5, n), u(0, np.pi, n)
        src_sci = _gauss(cx, cy, fwhm_sci, flux, el, pa)
        diff = src_sci.copy()
        meta.update(distpsnr1=u(1.5, 30, n), sgscore1=u(0, 1, n),
                    ndethist=rng.integers(0, 2, n), ncovhist=rng.integers(1, 1500, n),
                    chinr=u(0.5, 10, n), sharpnr=u(-0.5, 0.8, n), classtar=u(0.7, 1, n))
        sky = "ecliptic"
    else:  # bogus
        kind = rng.integers(0, 5, n)
        sign = np.where(rng.random(n) < 0.6, 1.0, -1.0)
        # 0: cosmic ray / hot pixel, 1: dipole, 2: bad column or row, 3: bright-star residual,
        # 4: noise blob
        crx, cry = np.rint(cx).astype(int), np.rint(cy).astype(int)
        spike = np.zeros_like(src_sci)
        spike[np.arange(n), cry, crx] = flux * u(0.3, 1.0, n)
        spike[np.arange(n), cry, np.clip(crx + rng.integers(-1, 2, n), 0, 62)] += flux * u(0, .5, n)
        shift = u(0.7, 2.0, n)
        ang = u(0, 2 * np.pi, n)
        bright = flux * u(3, 30, n)
        dipole = (_gauss(cx + shift * np.cos(ang), cy + shift * np.sin(ang), fwhm_sci, bright)
                  - _gauss(cx, cy, fwhm_sci, bright))
        column = np.zeros_like(src_sci)
        is_col = rng.random(n) < 0.5
        width = rng.integers(1, 3, n)
        for w in range(2):
            sel = width > w
            idx = np.clip(crx + w, 0, 62)
            column[sel & is_col, :, idx[sel & is_col]] = (sign * flux / 40)[sel & is_col, None]
            column[sel & ~is_col, idx[sel & ~is_col], :] = (sign * flux / 40)[sel & ~is_col, None]
        ring = (_gauss(cx, cy, fwhm_sci * 1.4, bright * 0.15) - _gauss(cx, cy, fwhm_sci, bright * 0.15))
        blob = _gauss(cx, cy, fwhm_sci * u(1.5, 3, n), flux * u(0.2, 0.6, n))
        table = np.stack([spike, dipole, column, ring, blob])
        diff = table[kind, np.arange(n)] * np.where(kind == 1, 1.0, sign)[:, None, None]
        star_under = np.isin(kind, (1, 3))
        base = _gauss(cx, cy, fwhm_tmp, np.where(star_under, bright, 0.0))
        src_tmp = base
        src_sci = base + np.where(np.isin(kind, (0, 2))[:, None, None], diff, 0.0)
        meta.update(distpsnr1=np.where(star_under, u(0, 0.7, n), u(0.5, 30, n)),
                    sgscore1=np.where(star_under, u(0.7, 1, n), u(0, 1, n)),
                    ndethist=rng.integers(1, 20, n), ncovhist=rng.integers(1, 2500, n),
                    chinr=u(0, 15, n), sharpnr=u(-1, 1.5, n), classtar=u(0, 1, n))
        fwhm_as = np.where(kind == 0, u(0.5, 1.5, n), np.where(kind == 4, u(4, 12, n), fwhm_as))
        mag = u(19.0, 21.0, n)
        sky = "uniform"

    sci = bkg_sci[:, None, None] + stars_sci + src_sci + rng.normal(0, 1, (n, 63, 63)) * sig_sci[:, None, None]
    tmp = bkg_tmp[:, None, None] + stars_tmp + src_tmp + rng.normal(0, 1, (n, 63, 63)) * sig_tmp[:, None, None]
    sig_d = np.sqrt(sig_sci**2 + sig_tmp**2)
    dif = diff + rng.normal(0, 1, (n, 63, 63)) * sig_d[:, None, None]
    if name == "bogus":  # a few stamps with NaN patches (masked pixels), as in real cutouts
        nan = rng.random(n) < 0.15
        for arr in (sci, dif):
            arr[nan, :8, :] = np.nan
    raw = np.stack([sci, tmp, dif], axis=1).astype(np.float32)
    if simulator_fraction > 0:
        use = rng.random(n) < simulator_fraction
        raw[use] = _simulator_images(name, rng, hosted[use], off[use], ang[use])
        if name == "bogus":
            fwhm_as[use] = np.where(rng.random(use.sum()) < 0.5, fwhm_as[use], u(0.5, 12, use.sum()))
    ra, dec = _sky_positions(n, rng, sky)
    isdiffpos = np.where(np.sum(diff[:, 28:35, 28:35], axis=(1, 2)) >= 0, 1, -1).astype(np.int8)
    ndethist = np.asarray(meta["ndethist"])
    ncovhist = np.maximum(np.asarray(meta["ncovhist"]), ndethist)
    alerts = pd.DataFrame({
        "ra": ra, "dec": dec, "magpsf": mag, "sigmapsf": np.clip(0.02 + 0.06 * (mag - 17), 0.02, 0.3),
        "diffmaglim": mag + u(0.2, 1.5, n), "isdiffpos": isdiffpos, "fwhm": fwhm_as,
        "classtar": meta["classtar"], "ndethist": ndethist, "ncovhist": ncovhist,
        "sgscore1": meta["sgscore1"], "distpsnr1": meta["distpsnr1"],
        "sgscore2": u(0, 1, n), "distpsnr2": meta["distpsnr1"] + u(1, 15, n),
        "sgscore3": u(0, 1, n), "distpsnr3": meta["distpsnr1"] + u(8, 25, n),
        "chinr": meta["chinr"], "sharpnr": meta["sharpnr"],
        "ssdistnr": np.where(name == "asteroid", u(0, 3, n), -999.0),
        "rb": np.where(name == "bogus", u(0, 0.4, n), u(0.5, 1, n)),
    })
    return alerts, raw


def encode_fits_gz(image: np.ndarray) -> bytes:
    """One 2-D array -> gzipped FITS bytes (as in ZTF ``cutout*.stampData``)."""
    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(image, dtype=np.float32)).writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=1, mtime=0)


def simulate_alerts(n_per_class: int | dict[str, int], seed: int | np.random.Generator = 0,
                    encode: bool = False, oid_prefix: str = "ZTFsim",
                    simulator_fraction: float | None = None) -> SimulatedAlerts:
    """Simulate first alerts of the five classes.

    Parameters
    ----------
    n_per_class : int or dict class -> count
    seed : int or Generator
    encode : bool
        Also build the ``stamps`` frame with gzipped FITS bytes (slow; for end-to-end tests).
    oid_prefix : str
        Prefix of the synthetic ``oid``.
    simulator_fraction : float, optional
        Fraction of the cutouts drawn with :func:`alerce.simulate.stamps.make_stamps` (the
        project simulator) instead of this module's vectorized generator; default 0.5 when the
        project simulator is importable, else 0. Metadata always come from this module.

    Returns
    -------
    SimulatedAlerts
        Alerts frame with the candidate columns the classifier needs (isdiffpos int8 +1/-1),
        raw cutouts and class labels, shuffled.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    counts = n_per_class if isinstance(n_per_class, dict) else {c: n_per_class for c in CLASSES}
    if simulator_fraction is None:
        simulator_fraction = 0.5 if _simulator_available() else 0.0
    frames, raws, labels = [], [], []
    for name in CLASSES:
        n = int(counts.get(name, 0))
        if n <= 0:
            continue
        a, r = _simulate_class(name, n, rng, simulator_fraction)
        frames.append(a)
        raws.append(r)
        labels.append(np.full(n, name, dtype=object))
    alerts = pd.concat(frames, ignore_index=True)
    raw, labels_arr = np.concatenate(raws), np.concatenate(labels)
    perm = rng.permutation(len(alerts))
    alerts, raw, labels_arr = alerts.iloc[perm].reset_index(drop=True), raw[perm], labels_arr[perm]
    n = len(alerts)
    candid = 3_000_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 7 + rng.integers(0, 7)
    alerts.insert(0, "oid", [f"{oid_prefix}{i:08d}" for i in range(n)])
    alerts.insert(1, "candid", candid)
    stamps = None
    if encode:
        stamps = pd.DataFrame({
            "oid": alerts["oid"], "candid": alerts["candid"],
            "science": [encode_fits_gz(x) for x in raw[:, 0]],
            "template": [encode_fits_gz(x) for x in raw[:, 1]],
            "difference": [encode_fits_gz(x) for x in raw[:, 2]],
        })
    return SimulatedAlerts(alerts=alerts, raw=raw, labels=labels_arr, stamps=stamps)
