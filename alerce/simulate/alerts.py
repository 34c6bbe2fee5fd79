"""Build encoded ZTF 4.02 alert packets for the detections of a simulated chunk.

Per-detection candidate fields are computed columnar for every row that appears in a packet
(as the alert's own candidate or as a previous candidate of a later alert), so the same
detection carries identical values wherever it appears. The ``candidate``, ``prv_candidate``
and ``fp_hist`` records of all those rows are Avro-encoded at once
(:mod:`alerce.simulate.avro_columnar`); a packet's history is then one slice of the buffer,
and the only per-alert work is the stamps and joining the byte slices.
"""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Iterator

import numpy as np

from alerce.batch import MJD_OFFSET
from alerce.io.schemas.ztf_4_02 import CANDIDATE_FIELDS, FP_HIST_FIELDS, PRV_CANDIDATE_FIELDS
from alerce.simulate.avro_columnar import (
    ascii_const,
    ascii_digits,
    encode_columns,
    zigzag_bytes,
)
from alerce.simulate.core import Chunk
from alerce.simulate.models import mag_to_flux
from alerce.simulate.objects import PIXEL_SCALE
from alerce.simulate.stamps import fits_gz_bytes, make_stamps

PUBLISHER = "ZTF (www.ztf.caltech.edu)"
#: Days of history carried in ``prv_candidates`` and ``fp_hists``.
HISTORY_DAYS = 30.0
_MJD_EPOCH = _dt.date(1858, 11, 17)

_PRV_NAMES = [n for n, _ in PRV_CANDIDATE_FIELDS]
_CAND_NAMES = [n for n, _ in CANDIDATE_FIELDS]
_FP_NAMES = [n for n, _ in FP_HIST_FIELDS]
_CAND_SET = frozenset(_CAND_NAMES)
_NONDET_NAMES = ["jd", "fid", "pid", "diffmaglim", "pdiffimfilename", "programpi", "programid",
                 "nid", "rcid", "field", "magzpsci", "magzpsciunc",
                 "magzpscirms", "clrcoeff", "clrcounc", "rbversion"]


_NONDET_SET = frozenset(_NONDET_NAMES)
_STAMP_OBJ_COLS = ("cls", "group", "distnr", "magnr_g", "magnr_r", "host_re", "mean_g",
                   "mean_r", "nr_pa")
_STAMP_ROW_COLS = ("obj", "magzpsci", "seeing", "diffmaglim", "fid", "flux")


@functools.lru_cache(maxsize=4096)
def _night_of_day(day: int) -> str:
    return (_MJD_EPOCH + _dt.timedelta(days=day)).strftime("%Y%m%d")


def night_of(mjd: float) -> str:
    """UT date ``YYYYMMDD`` of the night holding ``mjd`` (ZTF nights are within one UT date)."""
    return _night_of_day(int(np.floor(mjd)))


def ujy_to_dn(flux: np.ndarray, magzpsci: np.ndarray) -> np.ndarray:
    """Microjansky to image counts for zero point ``magzpsci`` (inverse of ALeRCE's formula)."""
    return np.asarray(flux) * 10.0 ** (0.4 * (np.asarray(magzpsci) - 23.9))


def _psf_sigma_pix(lim: np.ndarray, zp: np.ndarray, seeing: np.ndarray) -> np.ndarray:
    """Per-pixel sky noise [DN] giving a 5-sigma PSF depth ``lim``."""
    s = seeing / 2.354820045
    return ujy_to_dn(mag_to_flux(lim), zp) / (5.0 * np.sqrt(4 * np.pi) * s)


def _diffimg_names(mjd: np.ndarray, field: np.ndarray, fid: np.ndarray,
                   rcid: np.ndarray) -> np.ndarray:
    """ZTF difference-image file names (fixed width, built as an ASCII byte matrix)."""
    n = len(mjd)
    day = np.floor(mjd).astype(np.int64)
    udays, inv = np.unique(day, return_inverse=True)
    ymd = np.array([int(_night_of_day(int(d))) for d in udays], dtype=np.int64)[inv.ravel()]
    frac = np.floor((mjd - day) * 1e6).astype(np.int64)
    band = np.where((fid == 1)[:, None], ascii_const("zg", n), ascii_const("zr", n))
    parts = [ascii_const("ztf_", n), ascii_digits(ymd, 8), ascii_digits(frac, 6),
             ascii_const("_", n), ascii_digits(field, 6), ascii_const("_", n), band,
             ascii_const("_c", n), ascii_digits(rcid // 4 + 1, 2), ascii_const("_o_q", n),
             ascii_digits(rcid % 4 + 1, 1), ascii_const("_scimrefdiffimg.fits", n)]
    mat = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return mat.view(f"S{mat.shape[1]}").ravel()


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _row_fields(chunk: Chunk, idx: np.ndarray, rng: np.random.Generator) -> dict[str, object]:
    """Candidate-style columns (arrays; lists for strings) for the rows ``idx`` of the chunk."""
    r = chunk.rows
    obj = chunk.objects
    n = len(idx)
    o = r["obj"].to_numpy()[idx]
    mjd = r["mjd"].to_numpy()[idx]
    fid = r["fid"].to_numpy()[idx]
    g = fid == 1
    det = r["detected"].to_numpy()[idx]
    lim = r["diffmaglim"].to_numpy()[idx]
    zp = r["magzpsci"].to_numpy()[idx]
    seeing = r["seeing"].to_numpy()[idx]
    flux = r["flux"].to_numpy()[idx]
    sigma = r["sigma"].to_numpy()[idx]
    mag = np.where(det, r["magpsf"].to_numpy()[idx], 0.0)
    sig = np.where(det, r["sigmapsf"].to_numpy()[idx], 0.0)
    cls = obj["cls"].to_numpy()[o]
    bogus = cls == "bogus"
    field = obj["field"].to_numpy()[o]
    rcid = r["rcid"].to_numpy()[idx]
    pid = r["pid"].to_numpy()[idx]
    pdiff = _diffimg_names(mjd, field, fid, rcid)
    rb = np.clip(obj["rb_level"].to_numpy()[o] + rng.normal(0, 0.05, n), 0.0, 1.0)
    drb = np.clip(np.where(bogus, rb * rng.uniform(0.0, 0.6, n), 1 - (1 - rb) * 0.2), 0.0, 1.0)
    fwhm = seeing * rng.uniform(0.95, 1.35, n)
    elong = np.where(bogus, rng.uniform(1.0, 3.0, n), rng.uniform(1.0, 1.3, n))
    aimage = fwhm * rng.uniform(0.25, 0.33, n)
    bimage = aimage / elong
    magap = mag + rng.normal(0, 1.0, n) * sig * 1.1
    sigmagap = sig * 1.1
    magapbig = magap + rng.normal(0, 1.0, n) * sig * 0.3
    magzpsciunc = rng.uniform(5e-6, 2e-5, n)
    magzpscirms = rng.uniform(0.02, 0.045, n)
    clrcoeff = np.where(g, rng.normal(-0.05, 0.02, n), rng.normal(0.09, 0.02, n))
    clrcounc = rng.uniform(8e-6, 3e-5, n)
    snr = np.abs(flux) / sigma
    magnr = np.where(g, obj["magnr_g"].to_numpy()[o], obj["magnr_r"].to_numpy()[o])
    radec_err = 0.07 / 3600
    ra = obj["ra"].to_numpy()[o] + rng.normal(0, radec_err, n) / np.cos(
        np.radians(obj["dec"].to_numpy()[o]))
    dec = obj["dec"].to_numpy()[o] + rng.normal(0, radec_err, n)
    jdstarthist = r["jdstarthist"].to_numpy()[idx]
    jd = mjd + MJD_OFFSET
    classtar = np.where(bogus, rng.uniform(0.05, 0.8, n), rng.uniform(0.85, 1.0, n))
    dsnrms = snr * rng.uniform(0.6, 1.2, n)
    ssnrms = snr * rng.uniform(1.0, 2.2, n)
    cols: dict[str, list] = {
        "jd": jd, "fid": fid, "pid": pid,
        "diffmaglim": _f32(lim), "pdiffimfilename": pdiff,
        "programpi": ["Kulkarni"] * n, "programid": np.ones(n, np.int64),
        "candid": r["candid"].to_numpy()[idx],
        "isdiffpos": [("t" if f >= 0 else "f") if d else None for f, d in zip(flux, det, strict=True)],
        "tblid": rng.integers(0, 60, n),
        "nid": r["nid"].to_numpy()[idx], "rcid": rcid, "field": field,
        "xpos": _f32(obj["xpos"].to_numpy()[o] + rng.normal(0, 0.1, n)),
        "ypos": _f32(obj["ypos"].to_numpy()[o] + rng.normal(0, 0.1, n)),
        "ra": ra, "dec": dec, "magpsf": _f32(mag), "sigmapsf": _f32(sig),
        "chipsf": _f32(np.where(bogus, rng.lognormal(1.5, 0.6, n), rng.lognormal(0.1, 0.4, n))),
        "magap": _f32(magap), "sigmagap": _f32(sigmagap),
        "distnr": _f32(obj["distnr"].to_numpy()[o]), "magnr": _f32(magnr),
        "sigmagnr": _f32(obj["sigmagnr"].to_numpy()[o]), "chinr": _f32(obj["chinr"].to_numpy()[o]),
        "sharpnr": _f32(obj["sharpnr"].to_numpy()[o]), "sky": _f32(rng.normal(0, 0.5, n)),
        "magdiff": _f32(magap - mag), "fwhm": _f32(fwhm), "classtar": _f32(classtar),
        "mindtoedge": _f32(np.minimum(np.minimum(obj["xpos"].to_numpy()[o],
                                                 3072 - obj["xpos"].to_numpy()[o]),
                                      np.minimum(obj["ypos"].to_numpy()[o],
                                                 3080 - obj["ypos"].to_numpy()[o]))),
        "magfromlim": _f32(lim - magap), "seeratio": _f32(rng.uniform(0.7, 1.25, n)),
        "aimage": _f32(aimage), "bimage": _f32(bimage), "aimagerat": _f32(aimage / fwhm),
        "bimagerat": _f32(bimage / fwhm), "elong": _f32(elong),
        "nneg": np.where(bogus, rng.integers(0, 13, n), rng.integers(0, 5, n)),
        "nbad": np.where(bogus & (rng.random(n) < 0.3), rng.integers(1, 6, n), 0),
        "rb": _f32(rb), "ssdistnr": _f32(obj["ssdistnr"].to_numpy()[o]),
        "ssmagnr": _f32(obj["ssmagnr"].to_numpy()[o]),
        "ssnamenr": [str(s) for s in obj["ssnamenr"].to_numpy()[o]],
        "sumrat": _f32(np.where(bogus, rng.uniform(0.3, 1.0, n), rng.uniform(0.85, 1.0, n))),
        "magapbig": _f32(magapbig), "sigmagapbig": _f32(sig * 1.25),
        "ranr": obj["ranr"].to_numpy()[o], "decnr": obj["decnr"].to_numpy()[o],
        "ndethist": r["ndethist"].to_numpy()[idx],
        "ncovhist": r["ncovhist"].to_numpy()[idx],
        "jdstarthist": np.where(np.isfinite(jdstarthist), jdstarthist, jd),
        "jdendhist": jd, "scorr": snr * rng.uniform(1.0, 1.4, n),
        "tooflag": np.zeros(n, np.int64),
        "rfid": field * 10**6 + 120000 + fid * 100 + rcid,
        "jdstartref": obj["jdstartref"].to_numpy()[o],
        "jdendref": obj["jdendref"].to_numpy()[o],
        "nframesref": obj["nframesref"].to_numpy()[o],
        "rbversion": ["t17_f5_c3"] * n, "dsnrms": _f32(dsnrms), "ssnrms": _f32(ssnrms),
        "dsdiff": _f32(dsnrms - ssnrms), "magzpsci": _f32(zp), "magzpsciunc": _f32(magzpsciunc),
        "magzpscirms": _f32(magzpscirms), "nmatches": rng.integers(200, 1200, n),
        "clrcoeff": _f32(clrcoeff), "clrcounc": _f32(clrcounc),
        "zpclrcov": _f32(-rng.uniform(5e-6, 3e-5, n)), "zpmed": _f32(zp - rng.uniform(0, 0.05, n)),
        "clrmed": _f32(rng.uniform(0.4, 0.8, n)), "clrrms": _f32(rng.uniform(0.25, 0.4, n)),
        "exptime": np.full(n, 30.0), "drb": _f32(drb), "drbversion": ["d6_m7"] * n,
    }
    for col in ("neargaia", "neargaiabright", "maggaia", "maggaiabright", "nmtchps",
                "objectidps1", "objectidps2", "objectidps3"):
        cols[col] = obj[col].to_numpy()[o]
    for j in (1, 2, 3):
        for col in (f"sgmag{j}", f"srmag{j}", f"simag{j}", f"szmag{j}", f"sgscore{j}",
                    f"distpsnr{j}"):
            cols[col] = _f32(obj[col].to_numpy()[o])
    # forced photometry (fp_hists)
    conv = 10.0 ** (0.4 * (zp - 23.9))
    cols["forcediffimflux"] = _f32(flux * conv)
    cols["forcediffimfluxunc"] = _f32(sigma * conv)
    cols["sciinpseeing"] = _f32(seeing)
    cols["scibckgnd"] = _f32(rng.uniform(100.0, 260.0, n))
    cols["scisigpix"] = _f32(_psf_sigma_pix(lim, zp, seeing))
    cols["adpctdif1"] = _f32(rng.uniform(0.05, 0.2, n))
    cols["adpctdif2"] = _f32(rng.uniform(0.05, 0.2, n))
    cols["procstatus"] = ["0"] * n
    cols["fp_distnr"] = _f32(np.where(obj["distnr"].to_numpy()[o] >= 0,
                                      obj["distnr"].to_numpy()[o] * PIXEL_SCALE, -999.0))
    return cols


def _stamp_bytes(oc: dict[str, np.ndarray], rc: dict[str, np.ndarray], i: int,
                 rng: np.random.Generator, level: int) -> tuple[bytes, bytes, bytes]:
    """Gzipped-FITS science, template and difference cutouts of row ``i``.

    ``oc`` and ``rc`` are the chunk's object and row columns as numpy arrays.
    """
    o = int(rc["obj"][i])
    cls = oc["cls"][o]
    zp = float(rc["magzpsci"][i])
    seeing = float(rc["seeing"][i])
    lim = float(rc["diffmaglim"][i])
    g = int(rc["fid"][i]) == 1
    conv = 10.0 ** (0.4 * (zp - 23.9))
    distnr = float(oc["distnr"][o])
    magnr = float(oc["magnr_g"][o] if g else oc["magnr_r"][o])
    nr_flux = float(mag_to_flux(magnr)) * conv if distnr >= 0 else 0.0
    host_re = float(oc["host_re"][o])
    group = oc["group"][o]
    ref_flux = 0.0
    host_flux = 0.0
    host_offset = (0.0, 0.0)
    if group in ("Periodic", "Stochastic") and distnr >= 0:
        mean = float(oc["mean_g"][o] if g else oc["mean_r"][o])
        ref_flux = float(mag_to_flux(mean)) * conv
        if cls == "CV/Nova":
            ref_flux = nr_flux
        if host_re > 0:
            host_flux = max(nr_flux - ref_flux, 0.0)
    elif group == "Transient" and host_re > 0:
        host_flux = nr_flux
        pa = float(oc["nr_pa"][o])
        host_offset = (distnr * np.cos(pa), distnr * np.sin(pa))
    elif cls == "bogus" and 0 <= distnr < 1.5:
        ref_flux = nr_flux
    sci, tmpl, diff = make_stamps(
        cls, rng, fwhm=seeing, diff_flux=float(rc["flux"][i]) * conv,
        ref_flux=ref_flux if ref_flux > 0 or cls != "bogus" else None,
        host_flux=host_flux, host_re=max(host_re, 1.5), host_offset=host_offset,
        sky_sigma=float(_psf_sigma_pix(np.array(lim), np.array(zp), np.array(seeing))),
    )
    return fits_gz_bytes(sci, level), fits_gz_bytes(tmpl, level), fits_gz_bytes(diff, level)


def _cutout_bytes(name: str, data: bytes) -> bytes:
    raw = name.encode("ascii")
    return b"\x02" + zigzag_bytes(len(raw)) + raw + zigzag_bytes(len(data)) + data


def _array_bytes(buf: np.ndarray, off: np.ndarray, lo: int, hi: int) -> bytes:
    if hi <= lo:
        return b"\x00"  # union branch null
    return (b"\x02" + zigzag_bytes(hi - lo) + buf[off[lo]:off[hi]].tobytes() + b"\x00")


def _take(values, pos: np.ndarray):
    if isinstance(values, np.ndarray):
        return values[pos]
    return [values[p] for p in pos]


def iter_alerts(
    chunk: Chunk,
    window: tuple[float, float],
    rng: np.random.Generator,
    *,
    stamps: bool = True,
    stamp_level: int = 1,
) -> Iterator[tuple[int, str, int, bytes]]:
    """Yield the encoded alerts of every detection of the chunk inside ``window``.

    Parameters
    ----------
    chunk : Chunk
        Simulated objects and rows.
    window : (float, float)
        MJD range ``[start, end)`` of the alerts to issue.
    rng : numpy.random.Generator
        Random generator for data-quality fields and stamps.
    stamps : bool
        Attach the three gzipped-FITS cutouts.
    stamp_level : int
        zlib level of the cutouts.

    Yields
    ------
    candid : int
    night : str
        ``YYYYMMDD``.
    obj : int
        Row of ``chunk.objects``.
    body : bytes
        Schemaless Avro encoding of the ZTF 4.02 alert record, in candid order.
    """
    r = chunk.rows
    mjd = r["mjd"].to_numpy()
    obj = r["obj"].to_numpy()
    det = r["detected"].to_numpy()
    alert_idx = np.nonzero(det & (mjd >= window[0]) & (mjd < window[1]))[0]
    if len(alert_idx) == 0:
        return
    base = float(mjd.min()) - 1.0
    key = obj * 1e5 + (mjd - base)
    lo = np.searchsorted(key, key[alert_idx] - HISTORY_DAYS, side="left")
    mark = np.zeros(len(r) + 1, dtype=np.int64)
    np.add.at(mark, lo, 1)
    np.add.at(mark, alert_idx, -1)
    needed = np.cumsum(mark[:-1]) > 0
    needed[alert_idx] = True
    need_idx = np.nonzero(needed)[0]
    cols = _row_fields(chunk, need_idx, rng)
    n_need = len(need_idx)
    pos = np.full(len(r), -1, dtype=np.int64)
    pos[need_idx] = np.arange(n_need)
    det_need = det[need_idx]

    prv_buf, prv_off = encode_columns(PRV_CANDIDATE_FIELDS, cols, n_need, null_rows=~det_need,
                                      always=_NONDET_SET)
    fp_cols = dict(cols)
    fp_cols["distnr"] = cols["fp_distnr"]
    fp_buf, fp_off = encode_columns(FP_HIST_FIELDS, fp_cols, n_need)
    alert_pos = pos[alert_idx]
    cand_cols = {k: _take(v, alert_pos) for k, v in cols.items() if k in _CAND_SET}
    cand_buf, cand_off = encode_columns(CANDIDATE_FIELDS, cand_cols, len(alert_idx))
    oids = chunk.objects["oid"].to_numpy()
    candids = r["candid"].to_numpy()
    pids = r["pid"].to_numpy()
    if stamps:
        oc = {c: chunk.objects[c].to_numpy() for c in _STAMP_OBJ_COLS}
        rc = {c: r[c].to_numpy() for c in _STAMP_ROW_COLS}
    nights = {}
    head = (zigzag_bytes(4) + b"4.02" + zigzag_bytes(len(PUBLISHER)) + PUBLISHER.encode())

    order = np.argsort(candids[alert_idx], kind="stable")
    for a in order:
        i = int(alert_idx[a])
        p = int(pos[i])
        lo_p = int(pos[lo[a]]) if lo[a] < i else p
        candid = int(candids[i])
        oid = str(oids[obj[i]]).encode("ascii")
        parts = [head, zigzag_bytes(len(oid)), oid, zigzag_bytes(candid),
                 cand_buf[cand_off[a]:cand_off[a + 1]].tobytes(),
                 _array_bytes(prv_buf, prv_off, lo_p, p),
                 _array_bytes(fp_buf, fp_off, lo_p, p)]
        if stamps:
            pid = int(pids[i])
            for tag, data in zip(("sci", "ref", "diff"),
                                 _stamp_bytes(oc, rc, i, rng, stamp_level), strict=True):
                parts.append(_cutout_bytes(f"candid{candid}_pid{pid}_targ_{tag}.fits.gz", data))
        else:
            parts.append(b"\x00\x00\x00")
        day = int(np.floor(mjd[i]))
        night = nights.get(day)
        if night is None:
            night = nights[day] = night_of(day)
        yield candid, night, int(obj[i]), b"".join(parts)
