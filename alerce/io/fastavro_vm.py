"""A schema-compiled, numba-jitted Avro decoder that writes records straight into columns.

``fastavro`` builds a Python dict per record (and per ``prv_candidates`` entry), which caps ZTF
decoding near 1,000 alerts/s per core. Here a writer schema is compiled once into a flat program
of opcodes; a numba kernel runs it over all blocks of a batch that share the schema and writes
every leaf value into preallocated matrices (float64, int64 + validity, byte spans for
strings/bytes). Arrays of records become child *tables* whose rows point at their parent row.

Supported: records, primitive types, unions (any branches), arrays of records (or of unions of
null and a record), enums (as int), fixed. Each array item and each top-level record must take
at least one byte (true of every alert schema); a count larger than the bytes left is reported
as truncated data, so corrupt counts can never make the kernel loop or allocate without bound. Maps and arrays of primitives are not supported:
:func:`compile_schema` raises ``NotImplementedError`` and the caller falls back to fastavro.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

OP_END, OP_INT, OP_BOOL, OP_FLOAT, OP_DOUBLE, OP_BYTES, OP_FIXED = 0, 1, 2, 3, 4, 5, 6
OP_UNION, OP_JUMP, OP_ARRAY_BEGIN, OP_ARRAY_END, OP_NULLROW = 7, 8, 9, 10, 11

#: Status codes of the kernel (per block).
STATUS = {
    0: "ok", 1: "truncated data (read past the end of the block)",
    2: "invalid union branch index", 3: "negative length", 4: "row capacity exceeded",
    5: "record data does not fill the block exactly (corrupt data or wrong schema)",
    6: "nesting too deep",
}
_PRIMS = {"int": "I", "long": "I", "boolean": "I", "float": "F", "double": "F",
          "string": "S", "bytes": "S"}


@dataclass
class Table:
    """A table of the compiled schema: the top-level record (0) or an array of records."""

    name: str
    parent: int
    columns: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (kind, index)
    counts: dict[str, int] = field(default_factory=lambda: {"F": 0, "I": 0, "S": 0})

    def column(self, name: str, kind: str) -> int:
        hit = self.columns.get(name)
        if hit is not None:
            if hit[0] != kind:
                raise NotImplementedError(f"column {name!r} has two types")
            return hit[1]
        idx = self.counts[kind]
        self.counts[kind] += 1
        self.columns[name] = (kind, idx)
        return idx


@dataclass
class Program:
    """A compiled schema: opcodes plus table layout."""

    ops: np.ndarray      # (n, 4) int64: code, a, b, table
    targets: np.ndarray  # union branch start pcs
    tables: list[Table]
    widths: tuple[int, int, int]  # max F, I, S columns over tables
    rows_per_record: float = 0.0  # rows per top-level record in the last decode (sizes the next)


def compile_schema(parsed: Any) -> Program:
    """Compile a fastavro-parsed record schema (raises ``NotImplementedError`` if unsupported)."""
    ops: list[list[int]] = []
    targets: list[int] = []
    tables = [Table("", -1)]
    named: dict[str, Any] = {}

    def emit(code: int, a: int = 0, b: int = 0, t: int = 0) -> int:
        ops.append([code, a, b, t])
        return len(ops) - 1

    def walk(s: Any, t: int, name: str, array_item: bool = False) -> None:
        if isinstance(s, str):
            if s == "null":
                return
            if s in _PRIMS:
                kind = _PRIMS[s]
                col = tables[t].column(name, kind)
                code = {"int": OP_INT, "long": OP_INT, "boolean": OP_BOOL, "float": OP_FLOAT,
                        "double": OP_DOUBLE, "string": OP_BYTES, "bytes": OP_BYTES}[s]
                emit(code, col, 0, t)
                return
            if s in named:
                walk(named[s], t, name, array_item)
                return
            raise NotImplementedError(f"unknown type {s!r}")
        if isinstance(s, list):
            start = emit(OP_UNION, len(s), len(targets), t)
            slots = len(targets)
            targets.extend([0] * len(s))
            jumps = []
            for i, branch in enumerate(s):
                targets[slots + i] = len(ops)
                if branch == "null" and array_item:
                    emit(OP_NULLROW, 0, 0, t)
                else:
                    walk(branch, t, name, array_item)
                jumps.append(emit(OP_JUMP, 0, 0, t))
            for j in jumps:
                ops[j][1] = len(ops)
            del start
            return
        if isinstance(s, dict):
            typ = s["type"]
            if typ in _PRIMS or typ == "null":
                walk(typ, t, name, array_item)
                return
            if typ == "record":
                named[s["name"]] = s
                for f in s["fields"]:
                    walk(f["type"], t, f"{name}.{f['name']}" if name else f["name"])
                return
            if typ == "enum":
                named[s["name"]] = s
                emit(OP_INT, tables[t].column(name, "I"), 0, t)
                return
            if typ == "fixed":
                named[s["name"]] = s
                emit(OP_FIXED, tables[t].column(name, "S"), int(s["size"]), t)
                return
            if typ == "array":
                items = s["items"]
                item = items
                if isinstance(item, str) and item in named:
                    item = named[item]
                rec = item if isinstance(item, dict) else None
                if isinstance(item, list):
                    branches = [named.get(b, b) if isinstance(b, str) else b for b in item]
                    others = [b for b in branches if b != "null"]
                    if len(others) == 1 and isinstance(others[0], dict):
                        rec = others[0]
                if rec is None or rec.get("type") != "record":
                    raise NotImplementedError(f"array of {str(items)[:40]} at {name!r}")
                child = len(tables)
                tables.append(Table(name, t))
                begin = emit(OP_ARRAY_BEGIN, child, 0, t)
                walk(items, child, "", array_item=True)
                emit(OP_ARRAY_END, begin, 0, child)
                ops[begin][2] = len(ops)
                return
            raise NotImplementedError(f"Avro type {typ!r} at {name!r}")
        raise NotImplementedError(f"bad schema node at {name!r}")

    walk(parsed, 0, "")
    emit(OP_END)
    widths = tuple(max(tb.counts[k] for tb in tables) for k in ("F", "I", "S"))
    return Program(np.array(ops, dtype=np.int64), np.array(targets + [0], dtype=np.int64),
                   tables, widths)  # type: ignore[arg-type]


@numba.njit(cache=True, nogil=True)
def _varint(buf, pos, end):
    n = 0
    shift = 0
    while True:
        if pos >= end or shift > 63:
            return 0, -1
        c = np.int64(buf[pos])
        pos += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            break
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


@numba.njit(cache=True, nogil=True, inline="always")
def _new_row(r, t, p, widths, F, IN, IV, SO, SL, tab, par, rec, nrec):
    """Start row ``r`` of table ``t`` (parent row ``p``): its own columns start null.

    The row arrays are allocated empty and are as wide as the widest table; clearing only the
    row's own columns here writes each value once instead of filling every column first.
    """
    tab[r] = t
    par[r] = p
    rec[r] = nrec
    for k in range(widths[t, 0]):
        F[r, k] = np.nan
    for k in range(widths[t, 1]):
        IN[r, k] = 0
        IV[r, k] = 0
    for k in range(widths[t, 2]):
        SO[r, k] = 0
        SL[r, k] = -1


@numba.njit(cache=True, nogil=True)
def run_program(ops, targets, parents, widths, buf, blocks, first, nrows, nrec,
                F, IN, IV, SO, SL, tab, par, rec, status, errpos):
    """Decode blocks ``first..`` into the row arrays, starting at row ``nrows`` and record ``nrec``.

    Returns ``(nrows, nrec, block, full)``: with ``full`` the arrays ran out of rows at ``block``
    (rolled back to its start), and decoding resumes there once they have grown.
    """
    ntab = parents.shape[0]
    cap = tab.shape[0]
    cur = np.full(ntab, -1, dtype=np.int64)
    st_pc = np.zeros(64, dtype=np.int64)
    st_left = np.zeros(64, dtype=np.int64)
    for b in range(first, blocks.shape[0]):
        pos = blocks[b, 0]
        end = blocks[b, 1]
        count = blocks[b, 2]
        rows0 = nrows
        rec0 = nrec
        err = 0
        if count > end - pos:  # every alert record takes at least one byte
            err = 1
            count = 0
        for _ in range(count):
            if nrows >= cap:
                err = 4
                break
            r = nrows
            nrows += 1
            _new_row(r, 0, -1, widths, F, IN, IV, SO, SL, tab, par, rec, nrec)
            cur[0] = r
            sp = 0
            pc = 0
            while True:
                code = ops[pc, 0]
                a = ops[pc, 1]
                t = ops[pc, 3]
                if code == 0:
                    break
                elif code == 1 or code == 2:
                    if code == 1:
                        v, pos = _varint(buf, pos, end)
                        if pos < 0:
                            err = 1
                            break
                    else:
                        if pos >= end:
                            err = 1
                            break
                        v = np.int64(buf[pos])
                        pos += 1
                    IN[cur[t], a] = v
                    IV[cur[t], a] = 1
                    pc += 1
                elif code == 3:
                    if pos + 4 > end:
                        err = 1
                        break
                    F[cur[t], a] = buf[pos:pos + 4].view(np.float32)[0]
                    pos += 4
                    pc += 1
                elif code == 4:
                    if pos + 8 > end:
                        err = 1
                        break
                    F[cur[t], a] = buf[pos:pos + 8].view(np.float64)[0]
                    pos += 8
                    pc += 1
                elif code == 5 or code == 6:
                    if code == 5:
                        ln, pos = _varint(buf, pos, end)
                        if pos < 0:
                            err = 1
                            break
                    else:
                        ln = ops[pc, 2]
                    if ln < 0:
                        err = 3
                        break
                    if pos + ln > end:
                        err = 1
                        break
                    SO[cur[t], a] = pos
                    SL[cur[t], a] = ln
                    pos += ln
                    pc += 1
                elif code == 7:
                    idx, pos = _varint(buf, pos, end)
                    if pos < 0:
                        err = 1
                        break
                    if idx < 0 or idx >= a:
                        err = 2
                        break
                    pc = targets[ops[pc, 2] + idx]
                elif code == 8:
                    pc = a
                elif code == 9:
                    n, pos = _varint(buf, pos, end)
                    if pos < 0:
                        err = 1
                        break
                    if n < 0:
                        n = -n
                        _, pos = _varint(buf, pos, end)
                        if pos < 0:
                            err = 1
                            break
                    if n == 0:
                        pc = ops[pc, 2]
                        continue
                    if n > end - pos:  # items are records of >= 1 byte: guards hangs
                        err = 1
                        break
                    if sp >= 64:
                        err = 6
                        break
                    if nrows >= cap:
                        err = 4
                        break
                    st_pc[sp] = pc
                    st_left[sp] = n
                    sp += 1
                    r = nrows
                    nrows += 1
                    _new_row(r, a, cur[parents[a]], widths, F, IN, IV, SO, SL, tab, par, rec, nrec)
                    cur[a] = r
                    pc += 1
                elif code == 10:
                    begin = a
                    child = ops[begin, 1]
                    st_left[sp - 1] -= 1
                    if st_left[sp - 1] == 0:
                        n, pos = _varint(buf, pos, end)
                        if pos < 0:
                            err = 1
                            break
                        if n < 0:
                            n = -n
                            _, pos = _varint(buf, pos, end)
                            if pos < 0:
                                err = 1
                                break
                        if n == 0:
                            sp -= 1
                            pc += 1
                            continue
                        if n > end - pos:
                            err = 1
                            break
                        st_left[sp - 1] = n
                    if nrows >= cap:
                        err = 4
                        break
                    r = nrows
                    nrows += 1
                    _new_row(r, child, cur[parents[child]], widths, F, IN, IV, SO, SL, tab, par, rec, nrec)
                    cur[child] = r
                    pc = begin + 1
                else:  # OP_NULLROW: a null item of an array of (null | record)
                    tab[cur[t]] = -1
                    pc += 1
            if err != 0:
                break
            nrec += 1
        if err == 0 and pos != end:
            err = 5
        if err != 0:
            status[b] = err
            errpos[b] = pos
            nrows = rows0  # the failed block's rows are rewritten from scratch
            nrec = rec0
            if err == 4:
                status[b] = 0
                errpos[b] = 0
                return nrows, nrec, b, True
    return nrows, nrec, blocks.shape[0], False


@dataclass
class Decoded:
    """Columnar output of one program run."""

    program: Program
    buf: np.ndarray
    F: np.ndarray
    IN: np.ndarray
    IV: np.ndarray
    SO: np.ndarray
    SL: np.ndarray
    tab: np.ndarray
    par: np.ndarray
    rec: np.ndarray
    status: np.ndarray
    errpos: np.ndarray

    def rows(self, table: int) -> np.ndarray:
        """Row indices of a table, in decoding order."""
        return np.flatnonzero(self.tab == table)

    def column(self, table: int, name: str, rows: np.ndarray):
        """``(kind, values, valid)`` of a column for the given rows; ``None`` if absent.

        ``F``: float64 (null -> NaN). ``I``: int64 + bool validity. ``S``: offsets and lengths
        into :attr:`buf` (length -1 = null).
        """
        hit = self.program.tables[table].columns.get(name)
        if hit is None:
            return None
        kind, idx = hit
        if kind == "F":
            return kind, self.F[rows, idx], None
        if kind == "I":
            return kind, self.IN[rows, idx], self.IV[rows, idx].astype(bool)
        return kind, self.SO[rows, idx], self.SL[rows, idx]


def _row_arrays(cap: int, widths: tuple[int, int, int]) -> list[np.ndarray]:
    """Uninitialized row arrays ``F, IN, IV, SO, SL, tab, par, rec`` for ``cap`` rows
    (:func:`run_program` sets every value of the rows it creates)."""
    nf, ni, ns = (max(w, 1) for w in widths)
    return [np.empty((cap, nf)), np.empty((cap, ni), dtype=np.int64),
            np.empty((cap, ni), dtype=np.uint8), np.empty((cap, ns), dtype=np.int64),
            np.empty((cap, ns), dtype=np.int64), np.empty(cap, dtype=np.int64),
            np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64)]


def decode(program: Program, buf: np.ndarray, blocks: np.ndarray, rows_hint: int) -> Decoded:
    """Run a program over ``blocks`` (``(n, 3)``: start, end, record count) of ``buf``.

    The row arrays start at ``rows_hint`` rows, or at the rows per record the program needed
    last time (whichever is larger), and grow by doubling where decoding stopped.
    """
    parents = np.array([t.parent for t in program.tables], dtype=np.int64)
    widths = np.array([[t.counts.get(k, 0) for k in "FIS"] for t in program.tables], dtype=np.int64)
    records = int(blocks[:, 2].sum()) if len(blocks) else 0
    cap = max(16, rows_hint, int(program.rows_per_record * records * 1.1) + 16)
    arrays = _row_arrays(cap, program.widths)
    status = np.zeros(blocks.shape[0], dtype=np.int64)
    errpos = np.zeros(blocks.shape[0], dtype=np.int64)
    nrows = nrec = block = 0
    while True:
        nrows, nrec, block, full = run_program(program.ops, program.targets, parents, widths, buf, blocks,
                                               block, nrows, nrec, *arrays, status, errpos)
        if not full:
            break
        grown = _row_arrays(2 * len(arrays[5]), program.widths)
        for new, old in zip(grown, arrays):
            new[:nrows] = old[:nrows]
        arrays = grown
    if records:
        program.rows_per_record = nrows / records
    F, IN, IV, SO, SL, tab, par, rec = (a[:nrows] for a in arrays)
    return Decoded(program, buf, F, IN, IV, SO, SL, tab, par, rec, status, errpos)
