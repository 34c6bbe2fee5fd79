"""Alerts stored as Parquet (one row per alert, nested columns, as written by Spark brokers)."""

from __future__ import annotations

import os
from typing import Any

import pyarrow.parquet as pq

from ..batch import AlertBatch, DeadLetter
from .decode import SURVEYS, build_frames
from .errors import AlertDecodeError

_ZTF_COLUMNS = ("objectId", "candid", "schemavsn", "candidate", "prv_candidates", "fp_hists")
_LSST_COLUMNS = ("diaSource", "prvDiaSources", "prvDiaForcedSources", "prvDiaNondetectionLimits",
                 "diaObject", "ssSource", "ssObject", "lsst_schema_version")
_CUTOUTS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


def _open(path: str | os.PathLike) -> pq.ParquetFile:
    text = os.fspath(path)
    if "://" in text:
        import fsspec

        return pq.ParquetFile(fsspec.open(text, "rb").open())
    return pq.ParquetFile(text)


def parquet_survey(names: set[str]) -> str:
    """``"ztf"`` if the file has a ``candidate`` column, ``"lsst"`` if it has ``diaSource``."""
    if "candidate" in names and "objectId" in names:
        return "ztf"
    if "diaSource" in names:
        return "lsst"
    raise ValueError("not an alert Parquet file: no 'candidate'/'objectId' or 'diaSource' column")


def read_parquet_alerts(
    path: str | os.PathLike,
    *,
    survey: str = "auto",
    keep_stamps: bool = True,
    batch_size: int = 2048,
    strict: bool = False,
) -> AlertBatch:
    """Read a Parquet file of alerts into an :class:`~alerce.batch.AlertBatch`.

    Parameters
    ----------
    path : path or fsspec URL
        A Parquet file whose rows are whole alerts (ZTF: ``objectId, candidate, prv_candidates,
        [fp_hists], cutout*``; LSST: ``diaSource, prvDiaSources, ...``).
    survey : {"auto", "ztf", "lsst"}
    keep_stamps : bool
    batch_size : int
        Rows converted at a time.
    strict : bool
        Raise on a bad row instead of dead-lettering it.

    Raises
    ------
    AlertDecodeError
        The file cannot be opened or is not an alert Parquet file.
    """
    text = os.fspath(path)
    try:
        pf = _open(text)
        names = set(pf.schema_arrow.names)
        found = parquet_survey(names)
    except (OSError, ValueError) as exc:
        raise AlertDecodeError(text, None, f"{type(exc).__name__}: {exc}") from None
    if survey != "auto" and found != survey:
        raise AlertDecodeError(text, None, f"expected {survey!r} alerts, file holds {found!r}")
    wanted = _ZTF_COLUMNS if found == "ztf" else _LSST_COLUMNS
    if keep_stamps:
        wanted = wanted + _CUTOUTS
    columns = [c for c in wanted if c in names]
    dead: list[DeadLetter] = []
    parts = []
    row = 0
    for rb in pf.iter_batches(batch_size=batch_size, columns=columns):
        records: list[dict[str, Any]] = rb.to_pylist()
        sources = [f"{text}:row{row + i}" for i in range(len(records))]
        row += len(records)
        if found == "lsst":
            versions = [r.get("lsst_schema_version") for r in records]
        else:
            versions = [r.get("schemavsn") for r in records]
        parts.append(build_frames(found, records, sources, versions, keep_stamps=keep_stamps,
                                  dead_letters=None if strict else dead))
    out = AlertBatch.concat(parts) if len(parts) != 1 else parts[0]
    out.dead_letters = dead
    return out


assert set(SURVEYS) == {"ztf", "lsst"}
