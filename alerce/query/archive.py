"""Reading packets back from the raw archive (``ROOT/YYYYMMDD/<candid>.avro``, see
:mod:`alerce.streams.archive`) and decoding their cutouts."""

from __future__ import annotations

import posixpath
from typing import Any

SUFFIXES: tuple[str, ...] = (".avro", ".wire")


def find_packet(root: str, candid: int, mjd: float | None = None) -> str:
    """Path of the archived packet of ``candid`` under ``root``.

    The night folder is derived from ``mjd`` when known; otherwise (or when the file is not
    there) every night folder is searched.

    Raises
    ------
    FileNotFoundError
        No ``<candid>.avro`` / ``<candid>.wire`` under ``root`` (the message names both).
    """
    import fsspec

    from alerce.streams.archive import night_of

    fs, base = fsspec.core.url_to_fs(root)
    if not fs.isdir(base):
        raise FileNotFoundError(f"archive root {root!r} is not a directory")
    if mjd is not None:
        night = str(night_of([mjd])[0])
        for suffix in SUFFIXES:
            path = posixpath.join(base, night, f"{candid}{suffix}")
            if fs.exists(path):
                return fs.unstrip_protocol(path) if "://" in str(root) else path
    for suffix in SUFFIXES:
        hits = sorted(fs.glob(posixpath.join(base, "*", f"{candid}{suffix}")))
        if hits:
            return fs.unstrip_protocol(hits[0]) if "://" in str(root) else hits[0]
    raise FileNotFoundError(f"no archived packet for candid {candid} under {root!r} "
                            f"(looked for */{candid}.avro and */{candid}.wire)")


def read_bytes(path: str) -> bytes:
    """Raw bytes of an archived packet."""
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return fh.read()


def packet_stamps(path: str, candid: int, numpy: bool = False) -> dict[str, Any]:
    """Cutouts of the alert ``candid`` stored in ``path``.

    Returns
    -------
    dict
        ``science``, ``template``, ``difference``: astropy ``HDUList`` (or 2-D float32 arrays
        with ``numpy=True``); a cutout missing from the packet is None.

    Raises
    ------
    alerce.io.AlertDecodeError
        The packet does not decode (the message names the file).
    KeyError
        The packet holds no stamps for ``candid``.
    """
    from alerce.io import Packet, decode_packet_strict, decode_stamp, stamp_hdulist

    batch = decode_packet_strict(Packet(path, read_bytes(path)))
    stamps = batch.stamps
    rows = stamps[stamps["candid"].astype("int64") == int(candid)] if len(stamps) else stamps
    if not len(rows):
        raise KeyError(f"{path}: no cutouts for candid {candid}")
    row = rows.iloc[0]
    out: dict[str, Any] = {}
    for kind in ("science", "template", "difference"):
        data = row.get(kind)
        if data is None or (not isinstance(data, (bytes, bytearray)) and not len(data or b"")):
            out[kind] = None
        else:
            out[kind] = decode_stamp(bytes(data)) if numpy else stamp_hdulist(bytes(data))
    return out
