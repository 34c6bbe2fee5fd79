"""Honest labels for the real ZTF alerts under the shared data folder (training and evaluation).

Labels come only from information independent of the stamps model:

* ``asteroid``: a known solar-system object within 5 arcsec (``0 <= ssdistnr <= 5``);
* ``SN``: a spectroscopic TNS type (``tnsclass``/``tns`` columns of the Fink Parquet files, e.g.
  ``(TNS) SN Ia``, ``SLSN-I``) or a SIMBAD supernova cross-match (``cdsxmatch`` = ``SN``,
  ``Supernova``); candidates and impostors are ignored;
* ``AGN``: a SIMBAD/TNS type among :data:`AGN_TYPES` (QSO, Seyfert, BL Lac, blazar, LINER, AGN);
* ``VS``: a SIMBAD variable-star type among :data:`VS_TYPES`;
* ``bogus``: the deep real/bogus score says so (``drb < 0.05``).

Labels are per object (every alert of a labelled object gets it), except ``asteroid`` and
``bogus`` which are per alert. Conflicting labels drop the alert.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import pandas as pd

AGN_TYPES = frozenset({"QSO", "Seyfert", "Seyfert1", "Seyfert_1", "Seyfert_2", "Seyfert2",
                       "BLLac", "Blazar", "AGN", "LINER"})
VS_TYPES = frozenset({"RRLyr", "EB*", "Cepheid", "PulsV*delSct", "PulsV*WVir", "PulsV*bCep",
                      "Mira", "LPV*", "V*", "EllipVar", "Irregular_V*", "gammaDor", "delSctV*",
                      "RSCVnV*", "BYDraV*", "SB*", "Eruptive*", "Orion_V*", "TTau*"})
SN_TYPES = frozenset({"SN", "Supernova"})
_SIDE_COLUMNS = ("tnsclass", "tns", "cdsxmatch")


def _strip(label: object) -> str:
    text = "" if label is None or (isinstance(label, float) and np.isnan(label)) else str(label)
    for prefix in ("(TNS) ", "(SIMBAD) "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.strip()


def type_to_class(label: object) -> str | None:
    """Map a TNS / SIMBAD type string to a stamp class (None when it is not an honest match)."""
    text = _strip(label)
    if not text or "candidate" in text.lower() or text.endswith("?") or "Impostor" in text:
        return None
    if text in SN_TYPES or text.startswith(("SN ", "SLSN")):
        return "SN"
    if text in AGN_TYPES:
        return "AGN"
    if text in VS_TYPES:
        return "VS"
    return None


def _side_labels(paths: list[str]) -> pd.DataFrame:
    """``candid, oid, type`` from the label columns of Parquet alert files."""
    import pyarrow.parquet as pq

    frames = []
    for path in paths:
        names = set(pq.ParquetFile(path).schema_arrow.names)
        cols = [c for c in _SIDE_COLUMNS if c in names]
        if not cols or "candid" not in names or "objectId" not in names:
            continue
        t = pq.read_table(path, columns=["candid", "objectId", *cols]).to_pandas()
        for c in cols:
            frames.append(pd.DataFrame({"candid": t["candid"].astype("int64"),
                                        "oid": t["objectId"].astype(str),
                                        "type": t[c].astype(object)}))
    if not frames:
        return pd.DataFrame(columns=["candid", "oid", "type"])
    return pd.concat(frames, ignore_index=True)


def load_labeled_real_alerts(root: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Read every ZTF alert with stamps under ``root`` (the shared ``data`` folder) and label it.

    Parameters
    ----------
    root : path
        Folder holding ``ztf/alerts`` and ``ztf/parquet``.

    Returns
    -------
    alerts, stamps : DataFrame
        Only the labelled alerts (unique ``candid``), as produced by :func:`alerce.io.read_alerts`.
    labels : ndarray of str
        Stamp class of each alert row.
    """
    from alerce.io import read_alerts

    root = Path(root)
    parquet = sorted(glob.glob(str(root / "ztf" / "parquet" / "**" / "*.parquet"), recursive=True))
    batch = read_alerts([str(root / "ztf" / "alerts"), *parquet])
    alerts = batch.alerts.drop_duplicates("candid").reset_index(drop=True)
    side = _side_labels(parquet)
    side["cls"] = [type_to_class(t) for t in side["type"]]
    side = side.dropna(subset=["cls"])
    per_oid = side.groupby("oid")["cls"].agg(lambda s: s.iloc[0] if s.nunique() == 1 else "conflict")
    obj_label = alerts["oid"].map(per_oid).astype(object).to_numpy()

    ss = pd.to_numeric(alerts.get("ssdistnr"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    drb = pd.to_numeric(alerts.get("drb"), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        ast = (ss >= 0) & (ss <= 5)
        bog = drb < 0.05
    labels = np.full(len(alerts), None, dtype=object)
    has_obj = pd.notna(obj_label) & (obj_label != "conflict")
    labels[has_obj] = obj_label[has_obj]
    for mask, name in ((ast, "asteroid"), (bog, "bogus")):
        clash = mask & pd.notna(labels) & (labels != name)
        labels[mask] = name
        labels[clash] = None  # conflicting evidence: do not use
    keep = pd.notna(labels)
    kept = alerts[keep].reset_index(drop=True)
    stamps = batch.stamps.drop_duplicates("candid")
    stamps = stamps[stamps["candid"].isin(kept["candid"])].reset_index(drop=True)
    return kept, stamps, labels[keep].astype(str)
