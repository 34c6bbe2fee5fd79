"""ZTF-like observing schedules: fields, nights, seasons, g/r epochs and depths.

A schedule is a flat, columnar table of exposures (one row per field visit and band), sorted
by field then time. Every object of a field is observed at its field's exposures, so objects of
a field share processing ids (``pid``) exactly like in ZTF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: MJD of ZTF night id 0 (``nid = floor(mjd - NID_ZERO_MJD)``, matches real alerts).
NID_ZERO_MJD = 57754.0
#: Median 5-sigma depth per band (g, r) of a 30 s ZTF exposure.
MEDIAN_DEPTH = {1: 20.6, 2: 20.45}
#: Photometric zero point per band (DN per 30 s exposure).
ZEROPOINT = {1: 26.32, 2: 26.20}


@dataclass
class Schedule:
    """Exposures of every field (columnar, sorted by ``field_index`` then ``mjd``).

    Attributes
    ----------
    field_index : ndarray of int64
        Index of the field (0 .. n_fields-1) of each exposure.
    field_id : ndarray of int64
        ZTF-like field number of each field (length n_fields).
    mjd, fid, diffmaglim, magzpsci, seeing : ndarray
        Exposure start time, band (1=g, 2=r), 5-sigma limiting magnitude, zero point and
        seeing FWHM in pixels.
    start, count : ndarray of int64
        Row range of each field's exposures (length n_fields).
    """

    field_index: np.ndarray
    field_id: np.ndarray
    mjd: np.ndarray
    fid: np.ndarray
    diffmaglim: np.ndarray
    magzpsci: np.ndarray
    seeing: np.ndarray
    start: np.ndarray
    count: np.ndarray

    @property
    def n_fields(self) -> int:
        """Number of fields."""
        return len(self.field_id)


def nid_of(mjd: np.ndarray) -> np.ndarray:
    """ZTF night id of an MJD (days since 2017-01-01, as in real alerts)."""
    return np.floor(np.asarray(mjd) - NID_ZERO_MJD).astype(np.int64)


def pid_of(mjd: np.ndarray, rcid: np.ndarray) -> np.ndarray:
    """ZTF-like processing id: night id, exposure time of night (1e-5 d), readout channel."""
    mjd = np.asarray(mjd, dtype=np.float64)
    frac = np.floor((mjd - np.floor(mjd)) * 1e5).astype(np.int64)
    return nid_of(mjd) * 10**9 + frac * 10**4 + np.asarray(rcid, dtype=np.int64) * 100 + 15


def make_schedule(
    rng: np.random.Generator,
    n_fields: int,
    mjd_start: float,
    mjd_end: float,
    in_season: float | None = None,
    visit_probability: tuple[float, float] = (0.35, 0.8),
    second_exposure: tuple[float, float] = (0.3, 0.4),
    always_visit: tuple[float, float] | None = None,
) -> Schedule:
    """Draw a ZTF-like schedule for ``n_fields`` fields between two MJDs.

    Each field has an observing season of 7-9 months per year (a seasonal gap otherwise); on
    each night of the season it is visited with a field-specific probability (weather and the
    ~1-3 day public-survey cadence), and a visit holds one or two g and r exposures, tens of
    minutes apart, in the Palomar night (UT 02:30-12:00).

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (the only source of randomness).
    n_fields : int
        Number of fields.
    mjd_start, mjd_end : float
        Time span (nights ``floor(mjd_start)`` .. ``ceil(mjd_end) - 1``).
    in_season : float, optional
        If given, every field's season contains this MJD (stream simulations).
    visit_probability : (float, float)
        Range of the per-field probability of a visit on a night of the season.
    second_exposure : (float, float)
        Probability of a second g and a second r exposure during a visit.
    always_visit : (float, float), optional
        MJD range whose nights are observed for every field (the alert nights of a stream
        simulation, so that every object can issue alerts).

    Returns
    -------
    Schedule
    """
    n_fields = max(int(n_fields), 1)
    nights = np.arange(np.floor(mjd_start), np.ceil(mjd_end), dtype=np.float64)
    year = 365.25
    season_len = rng.uniform(0.6, 0.75, n_fields) * year
    if in_season is None:
        season_mid = rng.uniform(0, year, n_fields) + mjd_start
    else:
        season_mid = in_season + rng.uniform(-0.3, 0.3, n_fields) * season_len
    phase = (nights[None, :] - season_mid[:, None]) / year
    dist = np.abs(phase - np.round(phase)) * year
    visible = dist < season_len[:, None] / 2
    p_visit = rng.uniform(*visit_probability, n_fields)
    visited = visible & (rng.random(visible.shape) < p_visit[:, None])
    if always_visit is not None:
        forced = (nights >= np.floor(always_visit[0])) & (nights < always_visit[1])
        visited[:, forced] = True
    f_idx, n_idx = np.nonzero(visited)
    n_visits = len(f_idx)
    # each visit: 1 or 2 exposures per band, g and r
    n_g = 1 + (rng.random(n_visits) < second_exposure[0])
    n_r = 1 + (rng.random(n_visits) < second_exposure[1])
    n_exp = n_g + n_r
    visit_of = np.repeat(np.arange(n_visits), n_exp)
    k = np.arange(len(visit_of)) - np.repeat(np.cumsum(n_exp) - n_exp, n_exp)
    fid = np.where(k < np.repeat(n_g, n_exp), 1, 2)
    # swap band order half of the time: r first
    r_first = np.repeat(rng.random(n_visits) < 0.5, n_exp)
    fid = np.where(r_first, 3 - fid, fid)
    t0 = nights[n_idx] + rng.uniform(0.105, 0.42, n_visits)
    gap = rng.uniform(0.015, 0.06, len(visit_of))
    mjd = t0[visit_of] + k * gap
    # night-level transparency + exposure-level scatter of the depth
    night_offset = rng.normal(0.0, 0.25, len(nights))
    base = np.where(fid == 1, MEDIAN_DEPTH[1], MEDIAN_DEPTH[2])
    lim = base + night_offset[n_idx][visit_of] + rng.normal(0.0, 0.2, len(visit_of))
    lim = np.clip(lim, 19.0, 21.3)
    seeing = np.clip(rng.lognormal(np.log(2.0), 0.2, len(visit_of)), 1.3, 4.5)
    zp = np.where(fid == 1, ZEROPOINT[1], ZEROPOINT[2]) + rng.normal(0, 0.04, len(visit_of))
    field_index = f_idx[visit_of].astype(np.int64)
    order = np.lexsort((mjd, field_index))
    field_index = field_index[order]
    count = np.bincount(field_index, minlength=n_fields).astype(np.int64)
    start = np.cumsum(count) - count
    field_id = np.sort(rng.choice(np.arange(245, 880), size=n_fields, replace=n_fields > 635))
    return Schedule(
        field_index=field_index,
        field_id=field_id.astype(np.int64),
        mjd=mjd[order],
        fid=fid[order].astype(np.int64),
        diffmaglim=lim[order],
        magzpsci=zp[order],
        seeing=seeing[order],
        start=start,
        count=count,
    )
