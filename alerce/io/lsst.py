"""Rubin/LSST adapter: decoded LSST alert records (schemas v7.x-v10, ELAsTiCC) -> canonical frames.

Column mapping (LSST field -> canonical column)
------------------------------------------------
==========================  ====================================================================
canonical                   LSST
==========================  ====================================================================
``oid``                     ``str(diaObjectId)``; for solar-system sources without a diaObject
                            (``diaObjectId`` null or 0): ``str(ssObjectId)``
``candid``                  ``diaSourceId``
``mjd``                     ``midpointMjdTai`` (ELAsTiCC: ``midPointTai``), TAI
``fid``                     ``alerce.batch.FID[band]`` (u=4, g=1, r=2, i=3, z=5, y=6; unknown -> 0)
``pid``                     ``visit`` (older schemas: ``ccdVisitId``)
``ra``, ``dec``             ``ra``, ``dec`` (ELAsTiCC: ``decl``)
``magpsf``                  ``31.4 - 2.5 log10|psfFlux|`` (flux in nJy; NaN when flux is 0 or NaN)
``sigmapsf``                ``1.0857 psfFluxErr / |psfFlux|``
``isdiffpos``               ``+1`` if ``psfFlux >= 0`` else ``-1`` (NaN flux -> -1)
``rb``                      ``reliability``
``detections``              ``diaSource`` (``parent_candid`` NA, ``has_stamp`` True) plus
                            ``prvDiaSources`` (``parent_candid`` = alert diaSourceId)
``forced_photometry``       ``prvDiaForcedSources``: ``pid`` = visit, ``forcediffimflux`` =
                            ``psfFlux``, ``forcediffimfluxunc`` = ``psfFluxErr`` (nJy) and
                            ``magzpsci`` = 31.4 so ``magzpsci - 2.5 log10(flux)`` is the AB mag
``non_detections``          ``prvDiaNondetectionLimits`` (schemas <= 7): ``diffmaglim`` =
                            ``31.4 - 2.5 log10(5 diaNoise)`` (5-sigma limit)
``stamps``                  ``cutoutScience``, ``cutoutTemplate``, ``cutoutDifference`` (plain FITS)
==========================  ====================================================================

The ``alerts`` frame carries the key columns, ``fid, ra, dec, magpsf, sigmapsf, isdiffpos, rb,
diaObjectId, ssObjectId`` and then every ``diaSource`` field under its LSST name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..batch import (
    ALERT_KEY_COLUMNS,
    DETECTION_COLUMNS,
    FID,
    FORCED_PHOTOMETRY_COLUMNS,
    NON_DETECTION_COLUMNS,
    STAMP_COLUMNS,
)
from .columns import frame, pluck, to_column
from .ztf import DETECTION_KINDS, empty_stamps

#: AB zero point of fluxes in nJy: m = 31.4 - 2.5 log10(f / nJy).
NJY_ZERO_POINT = 31.4
#: 2.5 / ln(10): converts a relative flux error to a magnitude error.
MAG_ERR_FACTOR = 1.0857

#: Canonical columns every LSST ``alerts`` frame starts with.
LSST_ALERT_COLUMNS: tuple[str, ...] = ALERT_KEY_COLUMNS + (
    "fid", "ra", "dec", "magpsf", "sigmapsf", "isdiffpos", "rb", "diaObjectId", "ssObjectId",
)

_ALIASES = {
    "mjd": ("midpointMjdTai", "midPointTai"),
    "band": ("band", "filterName"),
    "flux": ("psfFlux", "psFlux"),
    "flux_err": ("psfFluxErr", "psFluxErr"),
    "dec": ("dec", "decl"),
    "pid": ("visit", "ccdVisitId"),
}


def _get(rows: Sequence[Mapping[str, Any]], what: str) -> list:
    """Values of the first alias of ``what`` that each row has."""
    names = _ALIASES[what]
    out = []
    for r in rows:
        v = None
        for nme in names:
            if nme in r:
                v = r[nme]
                break
        out.append(v)
    return out


def band_to_fid(bands: Sequence[Any]) -> np.ndarray:
    """Map band letters (any case; ELAsTiCC writes ``Y``) to ``fid`` codes (unknown or missing -> 0)."""
    return np.array([FID.get(b.lower(), 0) if b else 0 for b in bands], dtype=np.int64)


def flux_to_mag(flux: np.ndarray, flux_err: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nJy flux -> (magpsf, sigmapsf, isdiffpos) as documented in the module docstring."""
    with np.errstate(divide="ignore", invalid="ignore"):
        absf = np.abs(flux)
        ok = absf > 0
        mag = np.where(ok, NJY_ZERO_POINT - 2.5 * np.log10(np.where(ok, absf, 1.0)), np.nan)
        err = np.where(ok, MAG_ERR_FACTOR * flux_err / np.where(ok, absf, 1.0), np.nan)
    sign = np.where(flux >= 0, 1, -1).astype(np.int8)
    return mag, err, sign


def _nonzero(v: Any) -> bool:
    return v is not None and v != 0


def lsst_oid(record: Mapping[str, Any]) -> str:
    """Object id of an LSST alert: diaObjectId, else ssObjectId for solar-system sources."""
    src = record.get("diaSource") or {}
    obj = record.get("diaObject") or {}
    for v in (obj.get("diaObjectId"), src.get("diaObjectId"), src.get("ssObjectId"),
              (record.get("ssSource") or {}).get("ssObjectId"),
              (record.get("ssObject") or {}).get("ssObjectId")):
        if _nonzero(v):
            return str(v)
    raise ValueError("LSST alert has neither diaObjectId nor ssObjectId")


def _source_columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    flux = to_column(_get(rows, "flux"), "f")
    err = to_column(_get(rows, "flux_err"), "f")
    mag, sig, sign = flux_to_mag(flux, err)
    return {
        "candid": to_column(pluck(rows, "diaSourceId"), "i"),
        "mjd": to_column(_get(rows, "mjd"), "f"),
        "fid": band_to_fid(_get(rows, "band")),
        "pid": to_column(_get(rows, "pid"), "i"),
        "ra": to_column(pluck(rows, "ra"), "f"),
        "dec": to_column(_get(rows, "dec"), "f"),
        "magpsf": mag, "sigmapsf": sig, "isdiffpos": sign,
        "rb": to_column(pluck(rows, "reliability"), "f"),
    }


def build_lsst_frames(
    records: Sequence[Mapping[str, Any]],
    sources: Sequence[str],
    schemavsns: Sequence[str | None],
    *,
    keep_stamps: bool = True,
) -> dict[str, pd.DataFrame]:
    """Turn decoded LSST alert records into the canonical frames (mapping in module docstring).

    Parameters
    ----------
    records : sequence of dict
        Decoded LSST alerts (``diaSource``, ``prvDiaSources``, ``prvDiaForcedSources``, ...).
    sources : sequence of str
        One source label per record.
    schemavsns : sequence of str or None
        Schema version label per record (e.g. ``"lsst.v7_4"``).
    keep_stamps : bool
        Fill the ``stamps`` frame with the raw cutout bytes.
    """
    n = len(records)
    srcs = [r["diaSource"] for r in records]
    if any(s is None for s in srcs):
        raise ValueError("LSST alert record without a diaSource")
    oids = [lsst_oid(r) for r in records]
    main = _source_columns(srcs)

    # ---- alerts ----------------------------------------------------------------------------
    cols: dict[str, Any] = {}
    keys: dict[str, None] = {}
    for s in srcs:
        keys.update(dict.fromkeys(s))
    for k in keys:
        vals = pluck(srcs, k)
        sample = next((v for v in vals if v is not None), None)
        kind = ("f" if isinstance(sample, float) else "b" if isinstance(sample, bool)
                else "i" if isinstance(sample, int) else "s" if isinstance(sample, str) else "o")
        if kind == "b" and any(v is None for v in vals):
            kind = "o"
        cols[k] = to_column(vals, kind)
    cols.update({k: v for k, v in main.items() if k != "pid"})
    cols.update(
        oid=to_column(oids, "s"), survey=to_column(["lsst"] * n, "s"),
        schemavsn=to_column(list(schemavsns), "s"), source=to_column(list(sources), "s"),
        diaObjectId=to_column(pluck(srcs, "diaObjectId"), "i"),
        ssObjectId=to_column(pluck(srcs, "ssObjectId"), "i"),
    )
    order = LSST_ALERT_COLUMNS + tuple(k for k in keys if k not in LSST_ALERT_COLUMNS)
    alerts = frame(cols, order, n)

    # ---- detections: diaSource + prvDiaSources -----------------------------------------------
    prv, counts = _flatten(records, "prvDiaSources")
    parent = np.repeat(np.arange(n), counts)
    pcols = _source_columns(prv)
    m = len(prv)
    candid = np.asarray(main["candid"], dtype=np.int64)
    dcols: dict[str, Any] = {}
    for k in main:
        dcols[k] = np.concatenate([np.asarray(main[k]), np.asarray(pcols[k])]) if m else main[k]
    dcols["oid"] = to_column(oids + [oids[i] for i in parent], "s")
    pc = pd.array(np.concatenate([np.zeros(n, dtype=np.int64), candid[parent]]), dtype="Int64")
    pc[:n] = pd.NA
    dcols["parent_candid"] = pc
    dcols["has_stamp"] = np.concatenate([np.ones(n, dtype=bool), np.zeros(m, dtype=bool)])
    for k in ("nid", "rfid"):
        dcols[k] = pd.array([pd.NA] * (n + m), dtype="Int64")
    for k in ("rbversion", "drbversion"):
        dcols[k] = to_column([None] * (n + m), "s")
    detections = frame(dcols, DETECTION_COLUMNS, n + m)
    for k, kind in DETECTION_KINDS.items():  # keep dtypes identical to ZTF frames
        if kind == "i" and detections[k].dtype != np.int64:
            detections[k] = detections[k].astype("Int64")

    # ---- forced photometry -------------------------------------------------------------------
    fps, fcounts = _flatten(records, "prvDiaForcedSources")
    fparent = np.repeat(np.arange(n), fcounts)
    fflux = to_column(_get(fps, "flux"), "f")
    fcols = {
        "oid": to_column([oids[i] for i in fparent], "s"),
        "pid": to_column(_get(fps, "pid"), "i"),
        "mjd": to_column(_get(fps, "mjd"), "f"),
        "fid": band_to_fid(_get(fps, "band")),
        "forcediffimflux": fflux,
        "forcediffimfluxunc": to_column(_get(fps, "flux_err"), "f"),
        "magzpsci": np.full(len(fps), NJY_ZERO_POINT),
        "field": pd.array([pd.NA] * len(fps), dtype="Int64"),
        "rcid": pd.array([pd.NA] * len(fps), dtype="Int64"),
        "rfid": pd.array([pd.NA] * len(fps), dtype="Int64"),
        "programid": pd.array([pd.NA] * len(fps), dtype="Int64"),
        "procstatus": to_column([None] * len(fps), "s"),
        "parent_candid": pd.array(candid[fparent], dtype="Int64"),
    }
    forced = frame(fcols, FORCED_PHOTOMETRY_COLUMNS, len(fps))

    # ---- non-detections (schemas <= 7 only) --------------------------------------------------
    nds, ncounts = _flatten(records, "prvDiaNondetectionLimits")
    nparent = np.repeat(np.arange(n), ncounts)
    noise = to_column(pluck(nds, "diaNoise"), "f")
    with np.errstate(divide="ignore", invalid="ignore"):
        lim = np.where(noise > 0, NJY_ZERO_POINT - 2.5 * np.log10(np.where(noise > 0, 5 * noise, 1.0)),
                       np.nan)
    ncols = {
        "oid": to_column([oids[i] for i in nparent], "s"),
        "fid": band_to_fid(_get(nds, "band")),
        "mjd": to_column(_get(nds, "mjd"), "f"),
        "diffmaglim": lim,
        "parent_candid": pd.array(candid[nparent], dtype="Int64"),
    }
    non_detections = frame(ncols, NON_DETECTION_COLUMNS, len(nds))

    # ---- stamps ------------------------------------------------------------------------------
    if keep_stamps:
        stamps = frame(
            {"oid": to_column(oids, "s"), "candid": main["candid"],
             "science": to_column(pluck(records, "cutoutScience"), "o"),
             "template": to_column(pluck(records, "cutoutTemplate"), "o"),
             "difference": to_column(pluck(records, "cutoutDifference"), "o")},
            STAMP_COLUMNS, n,
        )
    else:
        stamps = empty_stamps()
    return {
        "alerts": alerts, "detections": detections, "non_detections": non_detections,
        "forced_photometry": forced, "stamps": stamps,
    }


def _flatten(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list, np.ndarray]:
    out: list = []
    counts = np.zeros(len(records), dtype=np.int64)
    for i, r in enumerate(records):
        v = r.get(key)
        if v:
            if None in v:
                v = [x for x in v if x is not None]
            out.extend(v)
            counts[i] = len(v)
    return out, counts
