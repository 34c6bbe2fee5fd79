"""Light-curve models of every simulated class (pure, vectorized functions of time).

All models return the *difference* flux in microjansky (science minus reference, AB mag
``m = 23.9 - 2.5 log10(F)``) for one row per (object, epoch), with the object's parameters
already broadcast to the rows. Parameters are drawn by :func:`draw_parameters`.

Models
------
* periodic (``CEP, DSCT, E, LPV, Periodic-Other, RRL``): ``m(t) = mean + amp * shape(phase)``
  with a sawtooth (fast rise, slow decline; RRab, CEP), sinusoids with a harmonic (RRc,
  DSCT, Periodic-Other, LPV) or Gaussian primary/secondary eclipses plus ellipsoidal
  modulation (E). The reference image holds the star at its mean magnitude, so the
  difference flux changes sign along the cycle.
* stochastic (``AGN, QSO, Blazar, YSO``): damped random walk (Ornstein-Uhlenbeck process) in
  magnitude with class-typical time scale ``tau`` and rms ``sigma``, larger in g.
* ``CV/Nova``: dwarf-nova outbursts recurring quasi-periodically over a faint quiescent
  source, or (20 %) a single classical-nova eruption with a linear-in-magnitude decline.
* transients (``SNIa, SNII, SNIbc, SLSN``): Villar et al. (2019) rise/plateau/decline model per
  band, with class-typical rise and fall times, plateau length and slope, peak magnitudes and
  a g band that declines faster (so g - r reddens with time).
"""

from __future__ import annotations

import numpy as np

from alerce.simulate.classes import GROUP

#: AB zero point for fluxes in microjansky.
UJY_ZP = 23.9


def mag_to_flux(mag: np.ndarray) -> np.ndarray:
    """AB magnitude to microjansky."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - UJY_ZP))


def flux_to_mag(flux: np.ndarray) -> np.ndarray:
    """Microjansky to AB magnitude (NaN for non-positive flux)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, UJY_ZP - 2.5 * np.log10(np.where(flux > 0, flux, 1.0)), np.nan)


#: Parameter columns drawn for every object (NaN where not applicable).
PARAM_COLUMNS = (
    "mean_g", "mean_r", "amp_g", "amp_r", "period", "phase0", "shape", "rise_frac",
    "ecl_width", "ecl_depth2", "tau", "sigma", "peak_mjd", "peak_g", "peak_r", "trise",
    "plateau", "beta_g", "beta_r", "tfall_g", "tfall_r", "recurrence", "duration", "nova",
)

# shape codes
SAWTOOTH, SINE, ECLIPSE, LPV_SHAPE = 0, 1, 2, 3


def _u(rng, lo, hi, n):
    return rng.uniform(lo, hi, n)


def _logu(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def draw_parameters(
    classes: np.ndarray, rng: np.random.Generator, peak_range: tuple[float, float]
) -> dict[str, np.ndarray]:
    """Draw light-curve parameters for each object.

    Parameters
    ----------
    classes : ndarray of str
        Class of each object.
    rng : numpy.random.Generator
        Random generator.
    peak_range : (float, float)
        MJD range of transient peaks, nova eruptions and dwarf-nova outburst phases.

    Returns
    -------
    dict of str to ndarray
        One float64 array of length ``len(classes)`` per name of :data:`PARAM_COLUMNS`.
    """
    n = len(classes)
    p = {c: np.full(n, np.nan) for c in PARAM_COLUMNS}
    classes = np.asarray(classes, dtype=object)

    def sel(name):
        return np.nonzero(classes == name)[0]

    def put(idx, **kw):
        for k, v in kw.items():
            p[k][idx] = v

    # ---- periodic ----------------------------------------------------------------------
    i = sel("RRL")
    m = len(i)
    rrc = rng.random(m) < 0.3
    period = np.where(rrc, _u(rng, 0.28, 0.42, m), _u(rng, 0.45, 0.9, m))
    amp = np.where(rrc, _u(rng, 0.25, 0.5, m), _u(rng, 0.5, 1.2, m))
    mean_r = _u(rng, 14.5, 18.5, m)
    put(i, period=period, amp_g=amp, amp_r=amp * _u(rng, 0.7, 0.8, m), mean_r=mean_r,
        mean_g=mean_r + _u(rng, 0.1, 0.4, m), shape=np.where(rrc, SINE, SAWTOOTH),
        rise_frac=_u(rng, 0.12, 0.2, m))
    i = sel("CEP")
    m = len(i)
    mean_r = _u(rng, 12.8, 17.0, m)
    amp = _u(rng, 0.4, 1.0, m)
    put(i, period=_logu(rng, 2.0, 40.0, m), amp_g=amp, amp_r=amp * _u(rng, 0.65, 0.8, m),
        mean_r=mean_r, mean_g=mean_r + _u(rng, 0.4, 1.0, m), shape=SAWTOOTH,
        rise_frac=_u(rng, 0.25, 0.35, m))
    i = sel("DSCT")
    m = len(i)
    mean_r = _u(rng, 13.3, 16.5, m)
    amp = _u(rng, 0.1, 0.5, m)
    put(i, period=_logu(rng, 0.03, 0.2, m), amp_g=amp, amp_r=amp * _u(rng, 0.75, 0.85, m),
        mean_r=mean_r, mean_g=mean_r + _u(rng, 0.0, 0.3, m), shape=SINE)
    i = sel("E")
    m = len(i)
    period = _logu(rng, 0.25, 10.0, m)
    contact = period < 0.5
    depth = _u(rng, 0.2, 1.0, m)
    mean_r = _u(rng, 13.5, 18.0, m)
    put(i, period=period, amp_g=depth, amp_r=depth * _u(rng, 0.9, 1.0, m), mean_r=mean_r,
        mean_g=mean_r + _u(rng, 0.1, 1.2, m), shape=ECLIPSE,
        ecl_width=np.where(contact, _u(rng, 0.1, 0.14, m), _u(rng, 0.02, 0.07, m)),
        ecl_depth2=np.where(contact, _u(rng, 0.7, 1.0, m), _u(rng, 0.1, 0.6, m)))
    i = sel("LPV")
    m = len(i)
    amp = _u(rng, 1.5, 5.0, m)
    mean_r = _u(rng, 12.8, 17.0, m)
    put(i, period=_u(rng, 100.0, 500.0, m), amp_g=amp, amp_r=amp * _u(rng, 0.5, 0.7, m),
        mean_r=mean_r, mean_g=mean_r + _u(rng, 1.2, 2.5, m), shape=LPV_SHAPE)
    i = sel("Periodic-Other")
    m = len(i)
    amp = _u(rng, 0.1, 0.4, m)
    mean_r = _u(rng, 13.5, 17.5, m)
    put(i, period=_logu(rng, 0.5, 50.0, m), amp_g=amp, amp_r=amp * _u(rng, 0.8, 0.95, m),
        mean_r=mean_r, mean_g=mean_r + _u(rng, 0.5, 1.2, m), shape=SINE)
    per = np.nonzero(np.isfinite(p["period"]))[0]
    p["phase0"][per] = rng.random(len(per))

    # ---- stochastic (damped random walk) -----------------------------------------------
    for name, tau, sig, mag, color, gscale in (
        ("AGN", (50, 400), (0.1, 0.3), (17.0, 19.8), (0.3, 0.8), 1.3),
        ("QSO", (100, 1000), (0.1, 0.25), (17.5, 19.8), (0.0, 0.4), 1.3),
        ("Blazar", (5, 100), (0.3, 0.9), (16.0, 19.5), (0.3, 0.7), 1.1),
        ("YSO", (0.5, 20), (0.2, 0.7), (14.0, 18.0), (1.0, 2.0), 1.3),
    ):
        i = sel(name)
        m = len(i)
        mean_r = _u(rng, *mag, m)
        sigma = _u(rng, *sig, m)
        put(i, tau=_logu(rng, *tau, m), sigma=sigma, amp_g=gscale * np.ones(m),
            amp_r=np.ones(m), mean_r=mean_r, mean_g=mean_r + _u(rng, *color, m))

    # ---- cataclysmic variables ---------------------------------------------------------
    i = sel("CV/Nova")
    m = len(i)
    nova = rng.random(m) < 0.2
    q_r = np.where(nova, _u(rng, 21.5, 23.0, m), _u(rng, 18.0, 21.0, m))
    amp = np.where(nova, 0.0, _u(rng, 2.0, 5.0, m))
    peak_r = np.where(nova, _u(rng, 13.5, 17.5, m), q_r - amp)
    put(i, nova=nova.astype(float), mean_r=q_r, mean_g=q_r + _u(rng, -0.2, 0.4, m),
        amp_g=amp, amp_r=amp, peak_r=peak_r, peak_g=peak_r + _u(rng, -0.1, 0.4, m),
        recurrence=_u(rng, 15.0, 200.0, m), duration=_u(rng, 2.0, 12.0, m),
        trise=_u(rng, 0.5, 2.5, m), tfall_r=_u(rng, 5.0, 60.0, m),
        peak_mjd=_u(rng, *peak_range, m))
    p["tfall_g"][i] = p["tfall_r"][i] * 0.8

    # ---- supernovae (Villar et al. 2019 per band) --------------------------------------
    for name, trise, plateau, beta, tfall, peak, color, gfall, gbeta in (
        ("SNIa", (2.5, 5.0), (3, 10), (-0.03, -0.01), (20, 35), (17.0, 19.8), (-0.15, 0.1),
         (0.55, 0.75), (1.2, 1.6)),
        ("SNII", (1.5, 4.0), (50, 100), (-0.012, -0.003), (15, 40), (17.5, 19.8),
         (-0.25, 0.0), (0.7, 0.9), (1.5, 2.5)),
        ("SNIbc", (2.0, 4.5), (3, 10), (-0.04, -0.01), (15, 30), (17.5, 19.8), (0.0, 0.4),
         (0.6, 0.8), (1.2, 1.6)),
        ("SLSN", (8.0, 25.0), (15, 50), (-0.01, -0.003), (40, 120), (18.5, 20.3),
         (-0.4, -0.1), (0.75, 0.95), (1.1, 1.4)),
    ):
        i = sel(name)
        m = len(i)
        pl = _u(rng, *plateau, m)
        b_r = np.maximum(_u(rng, *beta, m), -0.6 / pl)
        b_g = np.maximum(b_r * _u(rng, *gbeta, m), -0.8 / pl)
        tf = _u(rng, *tfall, m)
        pk = _u(rng, *peak, m)
        put(i, trise=_u(rng, *trise, m), plateau=pl, beta_r=b_r, beta_g=b_g, tfall_r=tf,
            tfall_g=tf * _u(rng, *gfall, m), peak_r=pk, peak_g=pk + _u(rng, *color, m),
            peak_mjd=_u(rng, *peak_range, m))

    # ---- asteroids / bogus: brightness of the single (or few) detections ---------------
    for name, mag, color in (("asteroid", (17.5, 20.3), (0.5, 0.8)), ("bogus", (18.0, 20.5), (0.0, 0.0))):
        i = sel(name)
        m = len(i)
        pk = _u(rng, *mag, m)
        put(i, peak_r=pk, peak_g=pk + _u(rng, *color, m))
    return p


def _periodic_shape(phase: np.ndarray, shape: np.ndarray, rise: np.ndarray,
                    width: np.ndarray, depth2: np.ndarray) -> np.ndarray:
    """Normalized magnitude offset (positive = fainter) of the periodic shapes."""
    out = np.zeros_like(phase)
    s = shape == SAWTOOTH
    if s.any():
        ph, a = phase[s], rise[s]
        out[s] = np.where(ph < a, 0.5 - ph / a, -0.5 + (ph - a) / (1 - a))
    s = shape == SINE
    if s.any():
        ph = phase[s]
        out[s] = -0.45 * np.sin(2 * np.pi * ph) - 0.1 * np.sin(4 * np.pi * ph + 0.7)
    s = shape == LPV_SHAPE
    if s.any():
        ph = phase[s]
        out[s] = -0.5 * np.sin(2 * np.pi * ph + 0.4 * np.sin(2 * np.pi * ph))
    s = shape == ECLIPSE
    if s.any():
        ph, w, d2 = phase[s], width[s], depth2[s]
        d1 = np.minimum(ph, 1 - ph)
        out[s] = (np.exp(-0.5 * (d1 / w) ** 2) + d2 * np.exp(-0.5 * ((ph - 0.5) / w) ** 2)
                  + 0.03 * (1 - np.cos(4 * np.pi * ph)))
    return out


def drw(t: np.ndarray, first: np.ndarray, tau: np.ndarray, sigma: np.ndarray,
        z: np.ndarray) -> np.ndarray:
    """Exact damped-random-walk (Ornstein-Uhlenbeck) sample at sorted times.

    Parameters
    ----------
    t : ndarray
        Times, sorted inside each object's segment.
    first : ndarray of bool
        True on the first row of each object's segment (starts from the stationary law).
    tau, sigma : ndarray
        Damping time scale [days] and stationary rms per row.
    z : ndarray
        Standard normal draws, one per row.
    """
    from alerce.simulate._drw_kernel import ou_path

    return ou_path(np.ascontiguousarray(t, dtype=np.float64), np.ascontiguousarray(first),
                    np.ascontiguousarray(tau, dtype=np.float64),
                    np.ascontiguousarray(sigma, dtype=np.float64),
                    np.ascontiguousarray(z, dtype=np.float64))


def villar_flux(t, peak_mjd, peak_flux, trise, plateau, beta, tfall):
    """Villar et al. (2019) supernova flux, scaled to ``peak_flux`` at ``t1 = peak_mjd``.

    ``t0 = peak_mjd - plateau`` is the mid-rise time; before ``t1`` the flux is
    ``A (1 + beta (t - t0)) / (1 + exp(-(t - t0)/trise))``, after it the plateau value decays
    as ``exp(-(t - t1)/tfall)``.
    """
    t0 = peak_mjd - plateau
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-np.clip((t - t0) / trise, -500, 500)))
        sig1 = 1.0 / (1.0 + np.exp(-plateau / trise))
    amp = peak_flux / ((1 + beta * plateau) * sig1)
    before = amp * np.maximum(1 + beta * (t - t0), 0.0) * sig
    after = amp * (1 + beta * plateau) * np.exp(-np.clip(t - peak_mjd, 0, None) / tfall) * sig
    return np.where(t < peak_mjd, before, after)


def true_fluxes(cls: np.ndarray, t: np.ndarray, fid: np.ndarray, prm: dict[str, np.ndarray],
                first: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """True difference flux and reference flux of the variable source, per row.

    Parameters
    ----------
    cls : ndarray of str
        Class per row.
    t, fid : ndarray
        MJD and band per row (rows sorted by object then time).
    prm : dict of ndarray
        Object parameters broadcast to the rows (see :func:`draw_parameters`).
    first : ndarray of bool
        First row of each object.
    rng : numpy.random.Generator
        For the stochastic models.

    Returns
    -------
    diff, ref : ndarray
        Difference flux (science - reference) and the flux of the variable source in the
        reference image, both in microjansky (``ref`` is 0 for transients, asteroids and bogus).
    """
    n = len(t)
    diff = np.zeros(n)
    ref = np.zeros(n)
    g = fid == 1
    group = np.array([GROUP[c] for c in cls], dtype=object) if n else np.array([], dtype=object)
    mean = np.where(g, prm["mean_g"], prm["mean_r"])
    amp = np.where(g, prm["amp_g"], prm["amp_r"])

    s = group == "Periodic"
    if s.any():
        phase = np.mod((t[s] - 58000.0) / prm["period"][s] + prm["phase0"][s], 1.0)
        dm = amp[s] * _periodic_shape(phase, prm["shape"][s], prm["rise_frac"][s],
                                      prm["ecl_width"][s], prm["ecl_depth2"][s])
        # the reference holds the star at its time-averaged flux
        ref[s] = mag_to_flux(mean[s])
        diff[s] = mag_to_flux(mean[s] + dm) - ref[s]
        ecl = s & (prm["shape"] == ECLIPSE)
        # eclipsing binaries: reference ~ out-of-eclipse flux
        ref[ecl] = mag_to_flux(mean[ecl])
    s = np.isin(cls, ["AGN", "QSO", "Blazar", "YSO"])
    if s.any():
        z = rng.standard_normal(int(s.sum()))
        x = drw(t[s], first[s], prm["tau"][s], prm["sigma"][s], z)
        ref[s] = mag_to_flux(mean[s])
        diff[s] = mag_to_flux(mean[s] + amp[s] * x) - ref[s]
    s = cls == "CV/Nova"
    if s.any():
        tt = t[s]
        nova = prm["nova"][s] > 0.5
        q = mag_to_flux(mean[s])
        pk = mag_to_flux(np.where(g, prm["peak_g"], prm["peak_r"])[s])
        # dwarf novae: outbursts every `recurrence` days, fast rise, plateau, fast decline
        u = np.mod(tt - prm["peak_mjd"][s], prm["recurrence"][s])
        rise, dur = prm["trise"][s], prm["duration"][s]
        prof = np.where(u < rise, u / rise,
                        np.where(u < rise + dur, 1.0, np.exp(-(u - rise - dur) / 1.5)))
        dn = (pk - q) * prof
        # classical novae: one eruption, linear decline in magnitude (tfall = t2 [d])
        dt = tt - prm["peak_mjd"][s]
        pkm = np.where(g, prm["peak_g"], prm["peak_r"])[s]
        t2 = np.where(g, prm["tfall_g"], prm["tfall_r"])[s]
        nm = np.where(dt < 0, pkm - 8.0 * dt / rise, pkm + 2.0 * dt / t2)
        nv = np.where(dt > -3 * rise, mag_to_flux(np.minimum(nm, 40.0)), 0.0)
        ref[s] = q
        diff[s] = np.where(nova, nv, dn)
    s = group == "Transient"
    if s.any():
        pk = mag_to_flux(np.where(g, prm["peak_g"], prm["peak_r"])[s])
        diff[s] = villar_flux(t[s], prm["peak_mjd"][s], pk, prm["trise"][s], prm["plateau"][s],
                              np.where(g, prm["beta_g"], prm["beta_r"])[s],
                              np.where(g, prm["tfall_g"], prm["tfall_r"])[s])
    return diff, ref
