"""Columnar simulation of a chunk of objects observed on a schedule.

:func:`simulate_chunk` draws the objects of a chunk, expands them to one row per (object,
exposure of its field), evaluates the class light-curve models, adds noise from the depth of
each exposure and flags significant difference fluxes as detections. Everything is vectorized
over rows; the only per-row loop is the compiled damped-random-walk recursion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerce.batch import MJD_OFFSET
from alerce.simulate.cadence import Schedule, nid_of, pid_of
from alerce.simulate.models import draw_parameters, flux_to_mag, mag_to_flux, true_fluxes
from alerce.simulate.objects import draw_objects, make_oids

#: Detection threshold on |difference flux| / sigma.
SNR_THRESHOLD = 5.0


@dataclass
class Chunk:
    """Objects and their observations.

    Attributes
    ----------
    objects : pandas.DataFrame
        One row per object (``oid``, ``cls``, ``group``, metadata, light-curve parameters).
    rows : pandas.DataFrame
        One row per (object, exposure), sorted by object then time: ``obj`` (row of
        ``objects``), ``mjd, fid, diffmaglim, magzpsci, seeing, flux_true, flux, sigma,
        detected``, and for detections the alert photometry (``magpsf, sigmapsf, isdiffpos``),
        ``pid, nid, candid`` and history counters ``ndethist, ncovhist, jdstarthist``.
    """

    objects: pd.DataFrame
    rows: pd.DataFrame


def field_centers(rng: np.random.Generator, n_fields: int) -> tuple[np.ndarray, np.ndarray]:
    """Random field centers over the ZTF sky (declination > -30 deg)."""
    ra = rng.uniform(0, 360, n_fields)
    dec = np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-28)), np.sin(np.radians(85)),
                                           n_fields)))
    return ra, dec


def _group_rank(obj: np.ndarray, key: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rank (0 = largest key) of each masked row inside its object; -1 where not masked."""
    rank = np.full(len(obj), -1, dtype=np.int64)
    idx = np.nonzero(mask)[0]
    if len(idx) == 0:
        return rank
    order = idx[np.lexsort((-key[idx], obj[idx]))]
    o = obj[order]
    start = np.r_[True, o[1:] != o[:-1]]
    grp_start = np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
    rank[order] = np.arange(len(o)) - grp_start
    return rank


def simulate_chunk(
    classes: np.ndarray,
    rng: np.random.Generator,
    schedule: Schedule,
    field_ra: np.ndarray,
    field_dec: np.ndarray,
    *,
    index_offset: int,
    seed: int,
    peak_range: tuple[float, float],
    event_range: tuple[float, float],
) -> Chunk:
    """Simulate one chunk of objects.

    Parameters
    ----------
    classes : ndarray of str
        Class of each object of the chunk.
    rng : numpy.random.Generator
        The chunk's random generator.
    schedule : Schedule
        Shared observing schedule.
    field_ra, field_dec : ndarray
        Field centers.
    index_offset : int
        Global index of the chunk's first object (makes ``oid`` and ``candid`` unique).
    seed : int
        Simulation seed (scrambles the object ids).
    peak_range : (float, float)
        MJD range of transient peaks / eruptions.
    event_range : (float, float)
        MJD range in which asteroids and bogus candidates appear.

    Returns
    -------
    Chunk
    """
    n = len(classes)
    prm = draw_parameters(classes, rng, peak_range)
    obj = draw_objects(classes, prm, rng, schedule, field_ra, field_dec)
    for k, v in prm.items():
        obj[k] = v
    gidx = index_offset + np.arange(n)

    # ---- expand to one row per (object, exposure of its field) -------------------------
    fi = obj["field_index"].to_numpy()
    cnt = schedule.count[fi]
    total = int(cnt.sum())
    o = np.repeat(np.arange(n), cnt)
    first_row = np.cumsum(cnt) - cnt
    ep = np.repeat(schedule.start[fi] - first_row, cnt) + np.arange(total)
    t = schedule.mjd[ep]
    fid = schedule.fid[ep]
    lim = schedule.diffmaglim[ep]
    first = np.zeros(total, dtype=bool)
    first[first_row[cnt > 0]] = True
    cls_rows = np.asarray(classes, dtype=object)[o]
    prm_rows = {k: v[o] for k, v in prm.items()}
    flux_true, ref_src = true_fluxes(cls_rows, t, fid, prm_rows, first, rng)

    # ---- noise ---------------------------------------------------------------------------
    sig_lim = mag_to_flux(lim) / SNR_THRESHOLD
    magnr = np.where(fid == 1, obj["magnr_g"].to_numpy()[o], obj["magnr_r"].to_numpy()[o])
    distnr = obj["distnr"].to_numpy()[o]
    near = (distnr >= 0) & (distnr < 6)
    static = np.where(near, mag_to_flux(np.where(near, magnr, 99.0)), 0.0)
    static = np.where(obj["host_re"].to_numpy()[o] > 0, 0.3 * static, static)
    src = np.maximum(static + flux_true, 0.0)
    # sky noise from the depth + source photon noise (gain ~6 e-/DN at zero point ~26.3,
    # i.e. variance F[uJy] / 55 in uJy^2) + a 0.2 % subtraction floor of the static source
    sigma = np.sqrt(sig_lim**2 + src / 55.0 + (0.002 * static) ** 2)

    # ---- asteroids (one epoch) and bogus (one or two epochs) -----------------------------
    ast = cls_rows == "asteroid"
    bog = cls_rows == "bogus"
    in_event = (t >= event_range[0]) & (t < event_range[1])
    rank = _group_rank(o, rng.random(total), (ast | bog) & in_event)
    two = rng.random(n) < 0.3
    chosen = (rank == 0) | (bog & (rank == 1) & two[o])
    pk = mag_to_flux(np.where(fid == 1, prm_rows["peak_g"], prm_rows["peak_r"]))
    a_rows = ast & chosen
    flux_true[a_rows] = np.maximum(pk[a_rows], 7.0 * sigma[a_rows])
    b_rows = bog & chosen
    sign = np.where(rng.random(total) < 0.8, 1.0, -1.0)
    flux_true[b_rows] = (sign * rng.uniform(5.5, 12.0, total) * sigma)[b_rows]

    z = rng.standard_normal(total)
    flux = flux_true + sigma * z
    detected = np.abs(flux) >= SNR_THRESHOLD * sigma
    detected &= ~((ast | bog) & ~chosen)
    # bogus/asteroid: the event is the detection, noise cannot hide it
    flux[(ast | bog) & chosen] = np.where(np.abs(flux) >= SNR_THRESHOLD * sigma, flux,
                                          np.sign(flux_true) * SNR_THRESHOLD * 1.05 * sigma)[
        (ast | bog) & chosen]
    detected |= (ast | bog) & chosen

    rcid = obj["rcid"].to_numpy()[o]
    pid = pid_of(t, rcid)
    candid = pid * 10**6 + (gidx[o] % 10**6)

    # ---- history counters ----------------------------------------------------------------
    det_i = detected.astype(np.int64)
    cum = np.cumsum(det_i)
    cum_before_obj = np.repeat(np.r_[0, cum[first_row[1:] - 1]] if n > 1 else np.zeros(n, int), cnt) \
        if n else np.zeros(0, int)
    cum_det = cum - cum_before_obj
    cum_cov = np.arange(total) - np.repeat(first_row, cnt) + 1
    pre_ndet = obj["pre_ndet"].to_numpy()[o]
    jd = t + MJD_OFFSET
    # jd of the first detection of each object inside the simulated window
    first_det_jd = np.full(n, np.nan)
    di = np.nonzero(detected)[0]
    if len(di):
        od = o[di]
        firsts = np.r_[True, od[1:] != od[:-1]]
        first_det_jd[od[firsts]] = jd[di[firsts]]
    jdstart = np.where(pre_ndet > 0, obj["pre_jdstart"].to_numpy()[o], first_det_jd[o])

    absf = np.where(detected, np.abs(flux), np.nan)
    rows = pd.DataFrame({
        "obj": o, "mjd": t, "fid": fid, "diffmaglim": lim,
        "magzpsci": schedule.magzpsci[ep], "seeing": schedule.seeing[ep],
        "flux_true": flux_true, "flux": flux, "sigma": sigma, "detected": detected,
        "magpsf": flux_to_mag(absf), "sigmapsf": 1.0857362 * sigma / absf,
        "isdiffpos": np.where(flux >= 0, 1, -1).astype(np.int8),
        "pid": pid, "nid": nid_of(t), "candid": candid, "rcid": rcid,
        "ndethist": pre_ndet + cum_det, "ncovhist": obj["pre_ncov"].to_numpy()[o] + cum_cov,
        "jdstarthist": jdstart,
    })
    years = 2000 + np.floor((np.where(np.isfinite(first_det_jd), first_det_jd,
                                      t.max() + MJD_OFFSET if total else 2460000.5)
                             - 2451544.5) / 365.25).astype(np.int64)
    years = np.where(obj["pre_ndet"].to_numpy() > 0,
                     2000 + np.floor((obj["pre_jdstart"].to_numpy() - 2451544.5) / 365.25), years)
    obj.insert(0, "oid", make_oids(gidx, years, seed))
    obj.insert(1, "index", gidx)
    return Chunk(objects=obj, rows=rows)
