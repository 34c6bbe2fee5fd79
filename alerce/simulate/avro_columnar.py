"""Columnar Avro binary encoding of many flat records at once (numpy, no per-field loop per row).

Records whose fields are primitives or ``["null", primitive]`` unions (the ZTF ``candidate``,
``prv_candidate`` and ``fp_hist`` records) are encoded for all rows in one pass: every field
becomes a ``(rows, width)`` byte matrix plus a length per row (union index, zig-zag varints,
little-endian IEEE floats, length-prefixed UTF-8 strings), and the matrices are scattered into
one buffer. Consecutive rows are contiguous in the buffer, so the Avro array of the rows
``lo..hi`` is a single slice. The bytes are identical to :func:`fastavro.schemaless_writer`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def zigzag_bytes(n: int) -> bytes:
    """Avro ``long`` encoding (zig-zag varint) of one integer."""
    z = (int(n) << 1) ^ (int(n) >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.int64)
    z = ((v << 1) ^ (v >> 63)).view(np.uint64)
    n = len(v)
    mat = np.zeros((n, 10), dtype=np.uint8)
    lens = np.ones(n, dtype=np.int64)
    for k in range(10):
        byte = (z & np.uint64(0x7F)).astype(np.uint8)
        z = z >> np.uint64(7)
        more = z != 0
        mat[:, k] = byte | (more.astype(np.uint8) << 7)
        if k < 9:
            lens += more
        if not more.any():
            return mat[:, : k + 1], lens
    return mat, lens


def _strings(values: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Length-prefixed UTF-8 strings, each distinct value encoded once; plus the None mask."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    enc = [str(u).encode("utf-8") for u in uniques] + [b""]
    isnull = codes < 0
    codes = np.where(isnull, len(enc) - 1, codes)
    u = len(enc)
    slen = np.fromiter((len(e) for e in enc), dtype=np.int64, count=u)
    pre, plen = _varints(slen)
    maxs = int(slen.max())
    width = int((plen + slen).max())
    umat = np.zeros((u, width), dtype=np.uint8)
    for k in range(pre.shape[1]):
        sel = k < plen
        umat[sel, k] = pre[sel, k]
    if maxs:
        body = np.frombuffer(b"".join(e.ljust(maxs, b"\0") for e in enc),
                             dtype=np.uint8).reshape(u, maxs)
        src_col = np.arange(width)[None, :] - plen[:, None]
        ok = (src_col >= 0) & (src_col < slen[:, None])
        r, c = np.nonzero(ok)
        umat[r, c] = body[r, src_col[r, c]]
    return umat[codes], (plen + slen)[codes], isnull


def ascii_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an ``(n, width)`` ASCII matrix."""
    v = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers) % 10 + 48).astype(np.uint8)


def ascii_const(text: str, n: int) -> np.ndarray:
    """An ``(n, len(text))`` ASCII matrix repeating ``text``."""
    return np.broadcast_to(np.frombuffer(text.encode("ascii"), dtype=np.uint8),
                           (n, len(text)))


def _fixed_strings(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strings given as a fixed-width bytes array (``S`` dtype, no NUL padding used)."""
    n = len(values)
    w = values.dtype.itemsize
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(n, w)
    slen = np.count_nonzero(raw, axis=1)
    if np.any(slen != w):  # variable lengths: fall back to the generic path
        mat, lens, _ = _strings([v.decode("utf-8") for v in values])
        return mat, lens
    pre, plen = _varints(np.array([w]))
    return (np.concatenate([np.broadcast_to(pre[:, : plen[0]], (n, int(plen[0]))), raw],
                           axis=1), np.full(n, int(plen[0]) + w, dtype=np.int64))


def _field_bytes(typ: str, values, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if typ == "double":
        a = np.ascontiguousarray(np.asarray(values, dtype="<f8"))
        return a.view(np.uint8).reshape(n, 8), np.full(n, 8, dtype=np.int64), None
    if typ == "float":
        a = np.ascontiguousarray(np.asarray(values, dtype=np.float64).astype("<f4"))
        return a.view(np.uint8).reshape(n, 4), np.full(n, 4, dtype=np.int64), None
    if typ in ("int", "long"):
        return (*_varints(np.asarray(values, dtype=np.int64)), None)
    if typ == "string":
        if isinstance(values, np.ndarray) and values.dtype.kind == "S":
            return (*_fixed_strings(values), None)
        return _strings(values)
    raise ValueError(f"unsupported Avro type {typ!r} for columnar encoding")


def encode_columns(
    fields: Sequence[tuple[str, str]],
    columns: Mapping[str, object],
    n: int,
    null_rows: np.ndarray | None = None,
    always: frozenset[str] | set[str] = frozenset(),
) -> tuple[np.ndarray, np.ndarray]:
    """Encode ``n`` records column by column.

    Parameters
    ----------
    fields : sequence of (name, code)
        Record fields in schema order; ``code`` is an Avro primitive, with ``?`` suffix or
        ``!`` prefix for a ``["null", T]`` union (as in :mod:`alerce.io.schemas.ztf_4_02`).
    columns : mapping
        Values per field: numeric arrays, or sequences of str/None for strings. A missing
        nullable field is written null.
    n : int
        Number of records.
    null_rows : ndarray of bool, optional
        Rows where every nullable field not in ``always`` is written null.
    always : set of str
        Fields never nulled by ``null_rows``.

    Returns
    -------
    buffer : ndarray of uint8
        The concatenated encodings.
    offsets : ndarray of int64
        ``n + 1`` offsets: record ``i`` is ``buffer[offsets[i]:offsets[i + 1]]``.

    Raises
    ------
    ValueError
        If a non-nullable field is missing.
    """
    parts = []
    for name, code in fields:
        nullable = code.endswith("?") or code.startswith("!")
        typ = code.strip("?!")
        if name not in columns:
            if not nullable:
                raise ValueError(f"field {name!r} is required (type {typ}) but has no column")
            parts.append((np.zeros((n, 1), dtype=np.uint8), np.ones(n, dtype=np.int64)))
            continue
        values = columns[name]
        mat, lens, none_mask = _field_bytes(typ, values, n)
        if nullable:
            isnull = none_mask if none_mask is not None else np.zeros(n, dtype=bool)
            if null_rows is not None and name not in always:
                isnull = isnull | null_rows
            m2 = np.zeros((n, mat.shape[1] + 1), dtype=np.uint8)
            m2[:, 0] = np.where(isnull, 0, 2)
            m2[:, 1:] = mat
            mat, lens = m2, np.where(isnull, 1, lens + 1)
        parts.append((mat, lens))
    if not parts:
        return np.zeros(0, dtype=np.uint8), np.zeros(n + 1, dtype=np.int64)
    # all fields side by side, then keep each field's first `len` bytes: a row-major boolean
    # gather yields the records one after the other, fields and bytes in order
    big = np.concatenate([m for m, _ in parts], axis=1)
    keep = np.concatenate([np.arange(m.shape[1])[None, :] < ln[:, None] for m, ln in parts],
                          axis=1)
    row_len = keep.sum(axis=1)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(row_len, out=offsets[1:])
    return big[keep], offsets
