"""The raw archive sink (the paper's Avro backup): original packets written per night.

Layout: ``ROOT/YYYYMMDD/<candid>.avro`` (ZTF container files, exactly the bytes received; Rubin
Confluent-wire messages keep their wire bytes with the suffix ``.wire``). ``ROOT`` is a directory
or any fsspec URL; the replay source reads it back (``alerce replay ROOT/``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

import numpy as np
import pandas as pd

from alerce.batch import AlertBatch


def night_of(mjd) -> np.ndarray:
    """``YYYYMMDD`` (UTC date) of each mjd."""
    dates = pd.to_datetime(np.asarray(mjd, dtype="float64") - 40587.0, unit="D")
    return np.asarray(dates.strftime("%Y%m%d"))


def archive_packets(packets: Sequence, batch: AlertBatch, root: str) -> int:
    """Write the packets of a decoded batch under ``root``; return the number written.

    Packets that did not decode are not archived here (the dead-letter sink keeps them).
    Writing is idempotent: a re-processed packet overwrites its own file with the same bytes.
    """
    import fsspec

    if not len(batch.alerts):
        return 0
    by_source = {p.source: p.payload for p in packets}
    alerts = batch.alerts.drop_duplicates("source")
    nights = night_of(alerts["mjd"].to_numpy())
    fs, base = fsspec.core.url_to_fs(root)
    written = 0
    for source, candid, night in zip(alerts["source"], alerts["candid"], nights):
        payload = by_source.get(source)
        if payload is None:
            continue
        suffix = ".wire" if payload[:1] == b"\x00" else ".avro"
        folder = posixpath.join(base, night)
        fs.makedirs(folder, exist_ok=True)
        with fs.open(posixpath.join(folder, f"{int(candid)}{suffix}"), "wb") as fh:
            fh.write(payload)
        written += 1
    return written
