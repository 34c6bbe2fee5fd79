"""Columnar reads of a SQLite store through the ADBC SQLite driver (Arrow, no Python row objects).

``sqlite3`` returns a Python tuple per row and a Python object per value; turning the ~20,000
stored detections of a live batch back into columns costs more than the query. The ADBC driver
(PyPI ``adbc-driver-sqlite``, Apache-2.0) fills Arrow arrays in C. :class:`ArrowReader` keeps one
such connection per thread and process and runs a group of queries in one read transaction
(one snapshot), as :meth:`alerce.store.Store.load_state` needs.

Every failure (driver missing, a value whose type does not match the column, a busy database)
is reported to the caller, which falls back to ``sqlite3``: this path changes speed, never results.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

#: Rows the driver reads before it fixes a column's Arrow type. Larger than any state read, so types
#: are inferred from the whole result: with the driver's default (1,024) a column that is NULL in
#: the first rows and text later fails with "Type mismatch".
_INFER_ROWS = str(100_000_000)


def adbc_available() -> bool:
    """Whether the ADBC SQLite driver is installed."""
    return importlib.util.find_spec("adbc_driver_sqlite") is not None


class ArrowReader:
    """Read-only ADBC connections to one SQLite file, one per thread (reopened after a fork)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []
        self._pid = os.getpid()

    def _connection(self):
        if os.getpid() != self._pid:  # forked: the parent's connections belong to the parent
            self._local = threading.local()
            self._all = []
            self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            import adbc_driver_sqlite.dbapi as adbc

            conn = self._local.conn = adbc.connect(self.path)
            with self._lock:
                self._all.append(conn)
        return conn

    def read(self, queries: Sequence[tuple[str, Sequence[Any]]]):
        """Arrow tables of ``queries`` (SQL with ``?`` marks, parameters), one snapshot for all."""
        conn = self._connection()
        cursor = conn.cursor()
        try:
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _INFER_ROWS})
            out = []
            for sql, params in queries:
                cursor.execute(sql, tuple(params))
                out.append(cursor.fetch_arrow_table())
            return out
        finally:
            cursor.close()
            conn.rollback()  # end the read transaction: an open reader would stall checkpoints

    def close(self) -> None:
        """Close every connection this process opened."""
        with self._lock:
            conns, self._all = self._all, []
        if os.getpid() != self._pid:
            return
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing is best effort (another thread's connection)
                pass
        self._local = threading.local()
