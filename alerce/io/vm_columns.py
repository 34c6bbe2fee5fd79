"""ZTF alerts through the numba decoder (:mod:`.fastavro_vm`): blocks -> column accessors -> frames."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .avro import ParsedSchema
from .columns import isdiffpos_sign, to_column
from .errors import AlertDecodeError
from .fastavro_vm import STATUS, Decoded, Program, compile_schema, decode
from .ztf import assemble_ztf

_PROGRAMS: dict[str, Program | None] = {}


def program_for(schema: ParsedSchema) -> Program | None:
    """Compiled program of a writer schema (cached); None if the schema is not supported."""
    key = schema.json_text
    if key not in _PROGRAMS:
        try:
            _PROGRAMS[key] = compile_schema(schema.parsed)
        except NotImplementedError:
            _PROGRAMS[key] = None
    return _PROGRAMS[key]


def _short_keys(buf: np.ndarray, off: np.ndarray, ln: np.ndarray) -> np.ndarray | None:
    """One uint64 per span (its length and up to 7 bytes); None if a span is longer than 7 bytes.

    Equal keys mean equal values (null spans, length -1, get a key of their own).
    """
    if not len(ln) or ln.max() > 7:
        return None
    keys = np.where(ln < 0, np.uint64(0xFF << 56), (ln.astype(np.uint64) << np.uint64(56)))
    for k in range(int(ln.max())):
        has = ln > k
        byte = buf[np.where(has, off + k, 0)].astype(np.uint64)
        keys |= np.where(has, byte << np.uint64(8 * k), np.uint64(0))
    return keys


class VMColumns:
    """Column accessor over one table of a :class:`~.fastavro_vm.Decoded` run."""

    def __init__(self, dec: Decoded, raw: bytes, table: int, rows: np.ndarray, prefix: str = ""):
        self.dec = dec
        self.raw = raw
        self.table = table
        self.rows = rows
        self.prefix = prefix
        self.n = len(rows)

    def has(self, name: str) -> bool:
        return self.table >= 0 and (self.prefix + name) in self.dec.program.tables[self.table].columns

    def take(self, idx: np.ndarray) -> VMColumns:
        return VMColumns(self.dec, self.raw, self.table, self.rows[idx], self.prefix)

    def _strings(self, off: np.ndarray, ln: np.ndarray, as_bytes: bool) -> list:
        keys = _short_keys(self.dec.buf, off, ln)
        if keys is not None and len(keys) > 64:
            # short values (flags, versions, status codes) repeat: decode each distinct one once
            uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
            values = np.empty(len(uniq), dtype=object)
            values[:] = self._decode_spans(off[first], ln[first], as_bytes)
            return values[inverse].tolist()
        return self._decode_spans(off, ln, as_bytes)

    def _decode_spans(self, off: np.ndarray, ln: np.ndarray, as_bytes: bool) -> list:
        raw = self.raw
        if as_bytes:
            return [raw[o:o + n] if n >= 0 else None for o, n in zip(off.tolist(), ln.tolist(), strict=True)]
        return [raw[o:o + n].decode("utf-8", "replace") if n >= 0 else None
                for o, n in zip(off.tolist(), ln.tolist(), strict=True)]

    def get(self, name: str, kind: str) -> Any:
        """Typed column like :meth:`.ztf.DictColumns.get`."""
        col = self.dec.column(self.table, self.prefix + name, self.rows) if self.table >= 0 else None
        if col is None:
            vals = [None] * self.n
            return isdiffpos_sign(vals) if kind == "d" else to_column(vals, kind)
        ckind, a, b = col
        if ckind == "F":
            return a if kind == "f" else to_column(a.tolist(), kind)
        if ckind == "I":
            valid = b
            if kind == "f":
                return np.where(valid, a.astype(np.float64), np.nan)
            if kind == "b":
                return a.astype(bool)
            if kind == "i" and valid.all():
                return a.copy()
            if kind in ("i", "I"):
                return pd.arrays.IntegerArray(a.copy(), ~valid)
            return to_column(np.where(valid, a, 0).tolist(), kind)
        strings = self._strings(a, b, kind == "o")
        if kind == "d":
            return isdiffpos_sign(strings)
        return to_column(strings, kind)


def ztf_vm_frames(
    schema: ParsedSchema,
    program: Program,
    items: Sequence[tuple[Any, list, str | None]],
    *,
    keep_stamps: bool,
) -> tuple[dict[str, pd.DataFrame] | None, list[tuple[Any, AlertDecodeError]]]:
    """Decode ZTF packets sharing ``schema`` with the numba program and build their frames.

    Parameters
    ----------
    items : sequence of (packet, blocks, wire_version)
        ``blocks`` as returned by :func:`.avro.read_container_blocks`.

    Returns
    -------
    frames : dict or None (None when no packet survived)
    failures : list of (packet, AlertDecodeError)
    """
    datas: list[bytes] = []
    starts, ends, counts, block_packet, block_at = [], [], [], [], []
    pos = 0
    for k, (_packet, blocks, _) in enumerate(items):
        for data, count, at in blocks:
            datas.append(data)
            starts.append(pos)
            pos += len(data)
            ends.append(pos)
            counts.append(count)
            block_packet.append(k)
            block_at.append(at)
    raw = b"".join(datas)
    buf = np.frombuffer(raw, dtype=np.uint8)
    blocks_arr = np.array([starts, ends, counts], dtype=np.int64).T.reshape(-1, 3)
    counts_arr = np.asarray(counts, dtype=np.int64)
    block_packet_arr = np.asarray(block_packet, dtype=np.int64)
    dec = decode(program, buf, blocks_arr, rows_hint=int(counts_arr.sum()) * 32 + 64)

    failures: dict[int, AlertDecodeError] = {}
    for b in np.flatnonzero(dec.status):
        k = int(block_packet_arr[b])
        if k not in failures:
            packet = items[k][0]
            failures[k] = AlertDecodeError(
                packet.source, block_at[b],
                f"corrupt block: {STATUS[int(dec.status[b])]} "
                f"(byte {int(dec.errpos[b] - starts[b])} of the decoded block)",
            )
    ok = dec.status == 0
    rec_packet = np.repeat(block_packet_arr[ok], counts_arr[ok])
    rows0 = dec.rows(0)
    pk = rec_packet[dec.rec[rows0]]

    # record-level validity (objectId, candidate.candid, candidate.jd present)
    top = VMColumns(dec, raw, 0, rows0)
    cand = VMColumns(dec, raw, 0, rows0, "candidate.")
    oid_len = dec.column(0, "objectId", rows0)
    cid = dec.column(0, "candidate.candid", rows0)
    jd = dec.column(0, "candidate.jd", rows0)
    valid = np.ones(len(rows0), dtype=bool)
    valid &= oid_len[2] >= 0 if oid_len is not None and oid_len[0] == "S" else False
    valid &= cid[2] if cid is not None and cid[0] == "I" else False
    valid &= np.isfinite(jd[1]) if jd is not None and jd[0] == "F" else False
    for i in np.flatnonzero(~valid):
        k = int(pk[i])
        if k not in failures:
            failures[k] = AlertDecodeError(items[k][0].source, None,
                                           "ZTF record without objectId, candidate, candid or jd")
    bad = np.array(sorted(failures), dtype=np.int64)
    keep = ~np.isin(pk, bad)
    rows0 = rows0[keep]
    pk = pk[keep]
    if len(rows0) == 0:
        return None, [(items[k][0], e) for k, e in failures.items()]

    # alert index of every row, for child tables
    alert_pos = np.full(len(dec.tab), -1, dtype=np.int64)
    alert_pos[rows0] = np.arange(len(rows0))
    names = {t.name: i for i, t in enumerate(program.tables)}

    def child(name: str) -> tuple[VMColumns, np.ndarray]:
        t = names.get(name, -1)
        if t < 0 or program.tables[t].parent != 0:
            return VMColumns(dec, raw, -1, np.zeros(0, dtype=np.int64)), np.zeros(0, dtype=np.int64)
        rows = dec.rows(t)
        parent = alert_pos[dec.par[rows]]
        sel = parent >= 0
        return VMColumns(dec, raw, t, rows[sel]), parent[sel]

    prv, prv_parent = child("prv_candidates")
    fps, fp_parent = child("fp_hists")
    if prv.has("forcediffimflux") and not prv.has("candid"):
        # ZTF's 3.5 test schema carried fp_hist records in prv_candidates
        fps, fp_parent = prv, prv_parent
        prv, prv_parent = child("")

    # source label per alert: packet source, plus #i for multi-alert containers
    per_packet = np.bincount(pk, minlength=len(items))
    first = np.zeros(len(pk), dtype=np.int64)
    if len(pk):
        change = np.r_[True, pk[1:] != pk[:-1]]
        starts_idx = np.flatnonzero(change)
        first = np.repeat(starts_idx, np.diff(np.r_[starts_idx, len(pk)]))
    within = np.arange(len(pk)) - first
    sources = [
        items[k][0].source if per_packet[k] == 1 else f"{items[k][0].source}#{i}"
        for k, i in zip(pk.tolist(), within.tolist(), strict=True)
    ]
    cand = VMColumns(dec, raw, 0, rows0, "candidate.")
    top = VMColumns(dec, raw, 0, rows0)
    frames = assemble_ztf(top, cand, prv, prv_parent, fps, fp_parent, sources,
                          keep_stamps=keep_stamps)
    return frames, [(items[k][0], e) for k, e in failures.items()]
