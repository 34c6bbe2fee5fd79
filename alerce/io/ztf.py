"""ZTF adapter: decoded ZTF alert records (any schema 3.0-4.02, Avro or Parquet rows) -> frames.

The frames follow :mod:`alerce.batch`. Every ``alerts`` frame has the columns
:data:`ALERT_COLUMNS` (key columns + every field of the 4.02 ``candidate`` record); fields that an
older schema lacks (``exptime`` before 3.1, ``drb``/``drbversion`` before 3.3) are NaN / missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..batch import (
    ALERT_KEY_COLUMNS,
    DETECTION_COLUMNS,
    FORCED_PHOTOMETRY_COLUMNS,
    MJD_OFFSET,
    NON_DETECTION_COLUMNS,
    STAMP_COLUMNS,
)
from .columns import frame, isdiffpos_sign, pluck, to_column

#: Fields of the ZTF 4.02 ``candidate`` record with their column kind (see :mod:`.columns`).
CANDIDATE_KINDS: dict[str, str] = {
    "jd": "f", "fid": "i", "pid": "i", "diffmaglim": "f", "pdiffimfilename": "s", "programpi": "s",
    "programid": "i", "candid": "i", "isdiffpos": "s", "tblid": "I", "nid": "I", "rcid": "I",
    "field": "I", "xpos": "f", "ypos": "f", "ra": "f", "dec": "f", "magpsf": "f", "sigmapsf": "f",
    "chipsf": "f", "magap": "f", "sigmagap": "f", "distnr": "f", "magnr": "f", "sigmagnr": "f",
    "chinr": "f", "sharpnr": "f", "sky": "f", "magdiff": "f", "fwhm": "f", "classtar": "f",
    "mindtoedge": "f", "magfromlim": "f", "seeratio": "f", "aimage": "f", "bimage": "f",
    "aimagerat": "f", "bimagerat": "f", "elong": "f", "nneg": "I", "nbad": "I", "rb": "f",
    "ssdistnr": "f", "ssmagnr": "f", "ssnamenr": "s", "sumrat": "f", "magapbig": "f",
    "sigmagapbig": "f", "ranr": "f", "decnr": "f", "sgmag1": "f", "srmag1": "f", "simag1": "f",
    "szmag1": "f", "sgscore1": "f", "distpsnr1": "f", "ndethist": "i", "ncovhist": "i",
    "jdstarthist": "f", "jdendhist": "f", "scorr": "f", "tooflag": "I", "objectidps1": "I",
    "objectidps2": "I", "sgmag2": "f", "srmag2": "f", "simag2": "f", "szmag2": "f",
    "sgscore2": "f", "distpsnr2": "f", "objectidps3": "I", "sgmag3": "f", "srmag3": "f",
    "simag3": "f", "szmag3": "f", "sgscore3": "f", "distpsnr3": "f", "nmtchps": "i", "rfid": "i",
    "jdstartref": "f", "jdendref": "f", "nframesref": "i", "rbversion": "s", "dsnrms": "f",
    "ssnrms": "f", "dsdiff": "f", "magzpsci": "f", "magzpsciunc": "f", "magzpscirms": "f",
    "nmatches": "i", "clrcoeff": "f", "clrcounc": "f", "zpclrcov": "f", "zpmed": "f",
    "clrmed": "f", "clrrms": "f", "neargaia": "f", "neargaiabright": "f", "maggaia": "f",
    "maggaiabright": "f", "exptime": "f", "drb": "f", "drbversion": "s",
}

#: Fields of the ZTF 4.02 ``fp_hist`` record with their column kind.
FP_KINDS: dict[str, str] = {
    "field": "I", "rcid": "I", "fid": "i", "pid": "i", "rfid": "i", "sciinpseeing": "f",
    "scibckgnd": "f", "scisigpix": "f", "magzpsci": "f", "magzpsciunc": "f", "magzpscirms": "f",
    "clrcoeff": "f", "clrcounc": "f", "exptime": "f", "adpctdif1": "f", "adpctdif2": "f",
    "diffmaglim": "f", "programid": "i", "jd": "f", "forcediffimflux": "f",
    "forcediffimfluxunc": "f", "procstatus": "s", "distnr": "f", "ranr": "f", "decnr": "f",
    "magnr": "f", "sigmagnr": "f", "chinr": "f", "sharpnr": "f",
}

#: Column kinds of the canonical detection frame.
DETECTION_KINDS: dict[str, str] = {
    **{c: "f" for c in DETECTION_COLUMNS},
    "oid": "s", "candid": "i", "fid": "i", "pid": "i", "nid": "I", "rfid": "I",
    "rbversion": "s", "drbversion": "s", "parent_candid": "I", "has_stamp": "b",
}
NON_DETECTION_KINDS: dict[str, str] = {
    "oid": "s", "fid": "i", "mjd": "f", "diffmaglim": "f", "parent_candid": "I",
}
FORCED_PHOTOMETRY_KINDS: dict[str, str] = {
    **{c: "f" for c in FORCED_PHOTOMETRY_COLUMNS},
    **FP_KINDS, "oid": "s", "parent_candid": "I",
}

#: Columns of every ZTF ``alerts`` frame.
ALERT_COLUMNS: tuple[str, ...] = ALERT_KEY_COLUMNS + tuple(
    c for c in CANDIDATE_KINDS if c != "candid"
)

_CUTOUTS = (("science", "cutoutScience"), ("template", "cutoutTemplate"),
            ("difference", "cutoutDifference"))

# Detection columns that come straight from a candidate / prv_candidate field of the same name.
_DET_DIRECT = tuple(
    c for c in DETECTION_COLUMNS
    if c not in ("oid", "mjd", "isdiffpos", "mjdendref", "parent_candid", "has_stamp")
)
# Fields absent from prv_candidate records (NaN / NA for previous detections).
_NOT_IN_PRV = {"rfid", "drb", "drbversion"}


def _stamp_bytes(cutout: Any) -> bytes | None:
    if cutout is None:
        return None
    if isinstance(cutout, Mapping):
        return cutout.get("stampData")
    return cutout


class DictColumns:
    """Column accessor over a list of record dicts (fastavro / pyarrow rows)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], prefix: str = ""):
        self.rows = rows
        self.n = len(rows)
        self.prefix = prefix

    def raw(self, name: str) -> list:
        """Values of ``name`` (dotted names reach into nested records), None when missing."""
        if "." in name:
            head, tail = name.split(".", 1)
            inner = [r.get(head) or {} for r in self.rows]
            return [r.get(tail) for r in inner]
        return pluck(self.rows, name)

    def get(self, name: str, kind: str) -> Any:
        """Typed column (see :func:`.columns.to_column`); ``kind="d"``: isdiffpos as int8 +1/-1."""
        vals = self.raw(name)
        return isdiffpos_sign(vals) if kind == "d" else to_column(vals, kind)

    def has(self, name: str) -> bool:
        return any(name in r for r in self.rows[:1])

    def take(self, idx: np.ndarray) -> DictColumns:
        return DictColumns([self.rows[i] for i in idx])


def build_ztf_frames(
    records: Sequence[Mapping[str, Any]],
    sources: Sequence[str],
    *,
    keep_stamps: bool = True,
) -> dict[str, pd.DataFrame]:
    """Turn decoded ZTF alert records into the canonical frames.

    Parameters
    ----------
    records : sequence of dict
        Alert records as decoded by fastavro (or ``pyarrow`` ``to_pylist`` rows): ``objectId``,
        ``candidate``, ``prv_candidates``, optional ``fp_hists`` and cutouts.
    sources : sequence of str
        One source label per record.
    keep_stamps : bool
        Fill the ``stamps`` frame with the raw cutout bytes.

    Returns
    -------
    dict of str to DataFrame
        ``alerts``, ``detections``, ``non_detections``, ``forced_photometry``, ``stamps``.
    """
    n = len(records)
    cands = [r["candidate"] for r in records]
    if any(c is None for c in cands):
        raise ValueError("alert record without a candidate")
    prv: list = []
    counts = np.zeros(n, dtype=np.int64)
    fps: list = []
    fp_counts = np.zeros(n, dtype=np.int64)
    for i, r in enumerate(records):
        p = r.get("prv_candidates")
        f = r.get("fp_hists")
        if p:
            if None in p:
                p = [x for x in p if x is not None]
            if p and "candid" not in p[0] and "forcediffimflux" in p[0]:
                # ZTF's 3.5 test schema carried fp_hist records in prv_candidates
                f = list(f or []) + p
                p = []
            prv.extend(p)
            counts[i] = len(p)
        if f:
            if None in f:
                f = [x for x in f if x is not None]
            fps.extend(f)
            fp_counts[i] = len(f)
    return assemble_ztf(
        DictColumns(records), DictColumns(cands), DictColumns(prv),
        np.repeat(np.arange(n), counts), DictColumns(fps), np.repeat(np.arange(n), fp_counts),
        sources, keep_stamps=keep_stamps,
    )


def assemble_ztf(top, cand, prv, prv_parent, fps, fp_parent, sources, *, keep_stamps=True):
    """Build the ZTF frames from column accessors (:class:`DictColumns` or the numba decoder's).

    ``top`` reads alert-level fields (``objectId``, ``schemavsn``, cutouts), ``cand`` the
    ``candidate`` record, ``prv``/``fps`` the flattened ``prv_candidates``/``fp_hists`` with
    ``prv_parent``/``fp_parent`` giving each row's alert index.
    """
    n = cand.n
    oid_col = top.get("objectId", "s")
    candid = cand.get("candid", "i")
    candid_arr = np.asarray(candid, dtype=np.int64)

    # ---- alerts: key columns + every candidate field -------------------------------------
    cols: dict[str, Any] = {}
    cand_cols: dict[str, Any] = {}
    for name, kind in CANDIDATE_KINDS.items():
        cand_cols[name] = cand.get(name, "d" if name == "isdiffpos" else kind)
    cols.update(cand_cols)
    cols.update(
        oid=oid_col, candid=candid, mjd=np.asarray(cand_cols["jd"]) - MJD_OFFSET,
        survey=to_column(["ztf"] * n, "s"),
        schemavsn=top.get("schemavsn", "s"),
        source=to_column(list(sources), "s"),
    )
    alerts = frame(cols, ALERT_COLUMNS, n)

    # ---- split previous candidates into detections / non-detections ------------------------
    prv_candid = prv.get("candid", "I")
    is_det = ~np.asarray(pd.isna(prv_candid), dtype=bool)
    det_idx = np.flatnonzero(is_det)
    nd_idx = np.flatnonzero(~is_det)
    prv_det = prv.take(det_idx)
    prv_nd = prv.take(nd_idx)
    m = len(det_idx)
    oids = np.asarray(oid_col, dtype=object)

    # ---- detections ------------------------------------------------------------------------
    def cat(a, b):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype:
            return np.concatenate([a, b])
        return pd.concat([pd.Series(a), pd.Series(b)], ignore_index=True).array

    dcols: dict[str, Any] = {}
    for name in _DET_DIRECT:
        kind = DETECTION_KINDS[name]
        own = cand_cols[name] if name != "candid" else candid
        if kind == "i" and not isinstance(own, np.ndarray):
            kind = "I"
        if name in _NOT_IN_PRV:
            other = to_column([None] * m, kind)
        else:
            other = prv_det.get(name, kind)
        if kind in ("I", "i") and not (isinstance(own, np.ndarray) and isinstance(other, np.ndarray)):
            own, other = pd.array(own, dtype="Int64"), pd.array(other, dtype="Int64")
        dcols[name] = cat(own, other)
    det_parent = prv_parent[det_idx]
    dcols["oid"] = to_column(np.concatenate([oids, oids[det_parent]]).tolist(), "s")
    dcols["mjd"] = np.concatenate([np.asarray(cand_cols["jd"]), prv_det.get("jd", "f")]) - MJD_OFFSET
    dcols["isdiffpos"] = np.concatenate([cand_cols["isdiffpos"], prv_det.get("isdiffpos", "d")])
    dcols["mjdendref"] = np.concatenate(
        [np.asarray(cand_cols["jdendref"], dtype=np.float64) - MJD_OFFSET, np.full(m, np.nan)]
    )
    pc = pd.array(np.concatenate([np.zeros(n, dtype=np.int64), candid_arr[det_parent]]),
                  dtype="Int64")
    pc[:n] = pd.NA
    dcols["parent_candid"] = pc
    dcols["has_stamp"] = np.concatenate([np.ones(n, dtype=bool), np.zeros(m, dtype=bool)])
    detections = frame(dcols, DETECTION_COLUMNS, n + m)

    # ---- non-detections ----------------------------------------------------------------------
    nd_parent = prv_parent[nd_idx]
    ncols = {
        "oid": to_column(oids[nd_parent].tolist(), "s"),
        "fid": prv_nd.get("fid", "i"),
        "mjd": prv_nd.get("jd", "f") - MJD_OFFSET,
        "diffmaglim": prv_nd.get("diffmaglim", "f"),
        "parent_candid": pd.array(candid_arr[nd_parent], dtype="Int64"),
    }
    non_detections = frame(ncols, NON_DETECTION_COLUMNS, len(nd_idx))

    # ---- forced photometry -----------------------------------------------------------------
    fcols: dict[str, Any] = {
        name: fps.get(name, kind) for name, kind in FP_KINDS.items() if name != "jd"
    }
    fcols["oid"] = to_column(oids[fp_parent].tolist(), "s")
    fcols["mjd"] = fps.get("jd", "f") - MJD_OFFSET
    fcols["parent_candid"] = pd.array(candid_arr[fp_parent], dtype="Int64")
    forced = frame(fcols, FORCED_PHOTOMETRY_COLUMNS, fps.n)

    # ---- stamps ------------------------------------------------------------------------------
    if keep_stamps:
        scols: dict[str, Any] = {"oid": oid_col, "candid": candid}
        for col, key in _CUTOUTS:
            scols[col] = top.get(f"{key}.stampData", "o")
        stamps = frame(scols, STAMP_COLUMNS, n)
    else:
        stamps = empty_stamps()
    return {
        "alerts": alerts, "detections": detections, "non_detections": non_detections,
        "forced_photometry": forced, "stamps": stamps,
    }


def empty_stamps() -> pd.DataFrame:
    """An empty ``stamps`` frame with the canonical dtypes."""
    return frame(
        {"oid": to_column([], "s"), "candid": to_column([], "i"),
         **{c: to_column([], "o") for c, _ in _CUTOUTS}},
        STAMP_COLUMNS, 0,
    )
