"""Per-object metadata consistent with the class: position, field, reference source, PS1, Gaia.

Conventions (as in real ZTF alerts): a missing reference source has ``distnr = magnr = -999``,
missing PS1/solar-system values are ``-999`` and ``ssnamenr = "null"``. Distances ``distnr``
are in pixels (1 px = 1.01 arcsec); PS1 and Gaia distances in arcsec.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerce.simulate.cadence import Schedule
from alerce.simulate.classes import GROUP

PIXEL_SCALE = 1.01  # arcsec / pixel
_LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))
_OID_MULT = 2_654_435_761  # odd and coprime with 26**7: a bijection of the index space


def make_oids(index: np.ndarray, years: np.ndarray, seed: int) -> np.ndarray:
    """ZTF-like object ids ``ZTF<yy><7 lowercase letters>``, unique for unique ``index``."""
    space = 26**7
    code = (np.asarray(index, dtype=np.int64) * _OID_MULT + (seed * 7919) % space) % space
    digits = np.empty((len(code), 7), dtype=np.int64)
    for k in range(6, -1, -1):
        digits[:, k] = code % 26
        code //= 26
    letters = _LETTERS[digits]
    yy = np.asarray(years, dtype=np.int64) % 100
    return np.array(
        [f"ZTF{y:02d}{''.join(row)}" for y, row in zip(yy, letters, strict=True)], dtype=object
    )


def _u(rng, lo, hi, n):
    return rng.uniform(lo, hi, n)


def draw_objects(
    classes: np.ndarray,
    params: dict[str, np.ndarray],
    rng: np.random.Generator,
    schedule: Schedule,
    field_ra: np.ndarray,
    field_dec: np.ndarray,
) -> pd.DataFrame:
    """Draw the class-consistent static metadata of each object.

    Parameters
    ----------
    classes : ndarray of str
        Class of each object.
    params : dict
        Light-curve parameters (mean/quiescent magnitudes are used for the reference source).
    rng : numpy.random.Generator
        Random generator.
    schedule : Schedule
        Fields the objects are spread over.
    field_ra, field_dec : ndarray
        Field centers [deg].

    Returns
    -------
    pandas.DataFrame
        One row per object: ``cls, group, field_index, field, rcid, ra, dec, xpos, ypos``, the
        reference-source columns ``distnr, magnr_g, magnr_r, sigmagnr, chinr, sharpnr,
        ranr, decnr, host_re, host_frac``, PS1 ``objectidps1..3, sgmag*, srmag*, simag*,
        szmag*, sgscore1..3, distpsnr1..3, nmtchps``, Gaia ``neargaia, neargaiabright,
        maggaia, maggaiabright``, solar-system ``ssdistnr, ssmagnr, ssnamenr``, history
        ``pre_ndet, pre_ncov, pre_jdstart``, reference image ``jdstartref, jdendref,
        nframesref``, host shape ``host_re, host_ell``, position angle ``nr_pa`` of the
        reference source and ``rb_level``.
    """
    n = len(classes)
    cls = np.asarray(classes, dtype=object)
    group = np.array([GROUP[c] for c in cls], dtype=object)
    fi = rng.integers(0, schedule.n_fields, n)
    r = np.sqrt(rng.random(n)) * 3.0
    th = rng.uniform(0, 2 * np.pi, n)
    dec = np.clip(field_dec[fi] + r * np.sin(th), -89.9, 89.9)
    ra = np.mod(field_ra[fi] + r * np.cos(th) / np.cos(np.radians(dec)), 360.0)
    df = pd.DataFrame({
        "cls": pd.array(cls, dtype=object), "group": pd.array(group, dtype=object),
        "field_index": fi, "field": schedule.field_id[fi], "rcid": rng.integers(0, 64, n),
        "ra": ra, "dec": dec, "xpos": _u(rng, 10, 3062, n), "ypos": _u(rng, 10, 3070, n),
    })
    stellar = np.isin(group, ["Periodic"]) | np.isin(cls, ["YSO", "CV/Nova"])
    nuclear = np.isin(cls, ["AGN", "QSO", "Blazar"])
    sn = group == "Transient"
    ast = cls == "asteroid"
    bog = cls == "bogus"
    nova = np.nan_to_num(params["nova"]) > 0.5

    # ---- reference source (nearest source in the reference-image PSF catalogue) -------
    distnr = np.full(n, -999.0)
    mag_r = np.full(n, -999.0)
    color = np.zeros(n)
    chinr = np.full(n, -999.0)
    sharpnr = np.full(n, -999.0)
    host_re = np.zeros(n)  # > 0: extended host (pixels)
    # variable stars: on a point source
    distnr[stellar] = np.abs(rng.normal(0, 0.25, stellar.sum()))
    mag_r[stellar] = params["mean_r"][stellar]
    color[stellar] = (params["mean_g"] - params["mean_r"])[stellar]
    chinr[stellar] = _u(rng, 0.4, 1.6, stellar.sum())
    sharpnr[stellar] = rng.normal(0, 0.04, stellar.sum())
    # classical novae: quiescent progenitor often below the reference depth
    faint = nova & (rng.random(n) < 0.6)
    distnr[faint] = -999.0
    mag_r[faint] = -999.0
    # nuclear: AGN on a galaxy, QSO/Blazar point-like
    k = nuclear.sum()
    distnr[nuclear] = np.abs(rng.normal(0, 0.2, k))
    host_boost = np.where(cls[nuclear] == "AGN", _u(rng, 0.3, 1.5, k), _u(rng, 0.0, 0.2, k))
    mag_r[nuclear] = params["mean_r"][nuclear] - host_boost
    color[nuclear] = (params["mean_g"] - params["mean_r"])[nuclear] + 0.3 * host_boost
    agn = cls[nuclear] == "AGN"
    chinr[nuclear] = np.where(agn, rng.lognormal(np.log(3.0), 0.4, k), _u(rng, 0.5, 1.8, k))
    sharpnr[nuclear] = np.where(agn, _u(rng, 0.15, 0.6, k), rng.normal(0.02, 0.05, k))
    host_re[nuclear] = np.where(agn, _u(rng, 1.5, 4.0, k), 0.0)
    # supernovae: offset from a host galaxy, or hostless
    hosted = sn & (rng.random(n) < 0.85)
    k = hosted.sum()
    distnr[hosted] = _u(rng, 1.0, 5.0, k)
    mag_r[hosted] = _u(rng, 17.0, 21.5, k)
    color[hosted] = _u(rng, 0.5, 1.0, k)
    chinr[hosted] = rng.lognormal(np.log(4.0), 0.5, k)
    sharpnr[hosted] = _u(rng, 0.2, 0.9, k)
    host_re[hosted] = _u(rng, 2.0, 6.0, k)
    # hostless SNe, asteroids, bogus: an unrelated source far away, or none at all
    other = (sn & ~hosted) | ast | bog | (faint & (rng.random(n) < 0.5))
    has = other & (rng.random(n) < 0.5)
    k = has.sum()
    distnr[has] = _u(rng, 6.0, 30.0, k)
    mag_r[has] = _u(rng, 16.0, 21.5, k)
    color[has] = _u(rng, 0.2, 1.4, k)
    chinr[has] = _u(rng, 0.5, 2.0, k)
    sharpnr[has] = rng.normal(0, 0.05, k)
    # bogus: half of them sit on a bright star (bad subtraction)
    bright = bog & (rng.random(n) < 0.5)
    k = bright.sum()
    distnr[bright] = _u(rng, 0.0, 1.5, k)
    mag_r[bright] = _u(rng, 11.5, 15.5, k)
    color[bright] = _u(rng, 0.2, 1.2, k)
    chinr[bright] = _u(rng, 0.8, 3.0, k)
    sharpnr[bright] = rng.normal(0, 0.05, k)
    found = distnr >= 0
    sigmagnr = np.where(found, 0.01 + 0.05 * 10 ** (0.4 * (mag_r - 20.5)), -999.0)
    pa = rng.uniform(0, 2 * np.pi, n)
    dra = np.where(found, distnr * PIXEL_SCALE / 3600 * np.cos(pa), 0.0)
    ddec = np.where(found, distnr * PIXEL_SCALE / 3600 * np.sin(pa), 0.0)
    df["distnr"] = distnr
    df["magnr_r"] = mag_r
    df["magnr_g"] = np.where(found, mag_r + color, -999.0)
    df["sigmagnr"] = np.minimum(sigmagnr, 0.5)
    df["chinr"] = chinr
    df["sharpnr"] = sharpnr
    df["ranr"] = np.where(found, ra + dra / np.cos(np.radians(dec)), -999.0)
    df["decnr"] = np.where(found, dec + ddec, -999.0)
    df["nr_pa"] = pa
    df["host_re"] = host_re
    df["host_ell"] = _u(rng, 0.0, 0.6, n)

    # ---- Pan-STARRS1 neighbours --------------------------------------------------------
    d1 = np.where(found & (distnr < 8), distnr * PIXEL_SCALE + np.abs(rng.normal(0, 0.08, n)),
                  _u(rng, 2.0, 25.0, n))
    score1 = np.where(stellar | np.isin(cls, ["QSO", "Blazar"]), _u(rng, 0.85, 1.0, n),
                      np.where(nuclear | hosted, _u(rng, 0.0, 0.35, n), rng.random(n)))
    score1 = np.where(bright, _u(rng, 0.9, 1.0, n), score1)
    rmag1 = np.where(found & (distnr < 8), mag_r + rng.normal(0, 0.05, n), _u(rng, 17.0, 22.0, n))
    col1 = np.where(found & (distnr < 8), color, _u(rng, 0.2, 1.4, n))
    d2 = d1 + _u(rng, 0.5, 15.0, n)
    d3 = d2 + _u(rng, 0.5, 12.0, n)
    df["distpsnr1"], df["distpsnr2"], df["distpsnr3"] = d1, np.minimum(d2, 29.9), np.minimum(d3, 29.95)
    df["sgscore1"], df["sgscore2"], df["sgscore3"] = score1, rng.random(n), rng.random(n)
    base_id = rng.integers(100_000_000_000_000_000, 200_000_000_000_000_000, n)
    df["objectidps1"] = base_id
    df["objectidps2"] = base_id + rng.integers(1, 10**8, n)
    df["objectidps3"] = base_id - rng.integers(1, 10**8, n)
    for j, (rm, cl) in enumerate(((rmag1, col1), (_u(rng, 16.0, 22.5, n), _u(rng, 0.2, 1.5, n)),
                                  (_u(rng, 16.0, 22.5, n), _u(rng, 0.2, 1.5, n))), start=1):
        gm = rm + cl
        df[f"sgmag{j}"] = np.where(gm > 22.8, -999.0, gm)
        df[f"srmag{j}"] = rm
        df[f"simag{j}"] = rm - 0.35 * cl
        df[f"szmag{j}"] = rm - 0.5 * cl
    df["nmtchps"] = rng.integers(3, 40, n)

    # ---- Gaia --------------------------------------------------------------------------
    star_like = stellar | np.isin(cls, ["QSO", "Blazar"]) | bright
    df["neargaia"] = np.where(star_like & found, d1 + np.abs(rng.normal(0, 0.05, n)),
                              _u(rng, 2.0, 60.0, n))
    df["maggaia"] = np.where(star_like & found, mag_r + 0.2 * color, _u(rng, 15.0, 20.8, n))
    df["neargaiabright"] = _u(rng, 5.0, 90.0, n)
    df["maggaiabright"] = _u(rng, 8.0, 14.0, n)

    # ---- solar system ------------------------------------------------------------------
    df["ssdistnr"] = np.where(ast, _u(rng, 0.0, 4.0, n), -999.0)
    df["ssmagnr"] = np.where(ast, params["peak_r"] + rng.normal(0.3, 0.3, n), -999.0)
    number = rng.integers(1000, 700000, n)
    prov_year = rng.integers(1990, 2024, n)
    half = _LETTERS[rng.integers(0, 24, n)]
    ordl = _LETTERS[rng.integers(0, 25, n)]
    cyc = rng.integers(1, 300, n)
    numbered = rng.random(n) < 0.7
    names = [
        (str(a) if nb else f"{y}{h.upper()}{o.upper()}{c}") if is_ast else "null"
        for a, nb, y, h, o, c, is_ast in zip(number, numbered, prov_year, half, ordl, cyc, ast, strict=True)
    ]
    df["ssnamenr"] = pd.array(names, dtype=object)

    # ---- history before the simulated window, real/bogus level -------------------------
    persistent = stellar | nuclear
    df["pre_ndet"] = np.where(persistent & ~nova, rng.integers(0, 400, n), 0)
    df["pre_ncov"] = rng.integers(50, 2500, n)
    df["pre_jdstart"] = _u(rng, 2458200.0, 2459800.0, n)
    df["jdstartref"] = _u(rng, 2458150.0, 2458420.0, n)
    df["jdendref"] = df["jdstartref"].to_numpy() + _u(rng, 5.0, 60.0, n)
    df["nframesref"] = rng.integers(15, 41, n)
    df["rb_level"] = np.where(bog, _u(rng, 0.02, 0.45, n), _u(rng, 0.55, 0.98, n))
    return df
