"""The :class:`Store`: idempotent bulk upserts and per-object state reads over SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import version as _version
from .arrow_reader import ArrowReader, adbc_available
from .convert import StoreDataError, frame_from_arrow, frame_from_rows, prepare
from .engine import DEFAULT_BUSY_TIMEOUT, WRITE_OPTION, create_engine, is_retryable, normalize_url
from .schema import METADATA, STATE_TABLES, TABLE_NAMES, UPSERT_GUARDS
from .sql import DEFAULT_CHUNK_SIZE, executemany_rows, write_copy, write_executemany

log = logging.getLogger(__name__)


class StoreWriteError(_version.StoreError):
    """A :meth:`Store.write` failed; the transaction was rolled back and nothing was written."""


class Store:
    """ALeRCE's tables in a SQL database: SQLite file (default) or PostgreSQL.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path/alerce.db`` (``sqlite://`` for in memory) or
        ``postgresql+psycopg://user@host:port/dbname`` (needs the ``postgres`` extra).
    create : bool
        Create the schema when the database is empty (else raise :class:`StoreError`).
    busy_timeout : float
        SQLite: seconds a writer waits for the write lock held by another process.
    pg_method : {"copy", "executemany"}
        PostgreSQL bulk-write path: ``COPY`` into a temporary table then one
        ``INSERT ... SELECT ... ON CONFLICT`` (default, faster), or ``executemany`` of a
        single-row upsert (the only path on SQLite).
    chunk_size : int
        Rows per ``executemany``/``COPY`` chunk.
    retries : int
        A write that fails with a deadlock / "database is locked" is retried this many times
        (the failed attempt was rolled back, so a retry is safe).
    arrow_reads : bool
        SQLite files: :meth:`load_state` and :meth:`read_objects` read through the ADBC SQLite
        driver into Arrow columns when ``adbc-driver-sqlite`` is installed (same frames, ~3x
        faster on large light curves; any failure falls back to ``sqlite3``). ``False`` always
        uses ``sqlite3``.

    Raises
    ------
    StoreVersionError
        The database was created by another schema version (run ``alerce db upgrade``).
    MissingDriverError
        PostgreSQL URL without psycopg installed.
    """

    def __init__(self, url: str = "sqlite:///alerce.db", *, create: bool = True,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT, pg_method: str = "copy",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, retries: int = 5, arrow_reads: bool = True) -> None:
        if pg_method not in ("copy", "executemany"):
            raise ValueError(f"pg_method must be 'copy' or 'executemany', not {pg_method!r}")
        self._url = normalize_url(url)
        self.url = self._url.render_as_string(hide_password=True)
        self.engine: Engine = create_engine(self._url, busy_timeout=busy_timeout)
        self.backend: str = self.engine.dialect.name
        if self.backend == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_tuning)
        self.pg_method = pg_method
        self.chunk_size = int(chunk_size)
        self.retries = int(retries)
        self._pid = os.getpid()
        self.arrow_reads = bool(arrow_reads)
        self._arrow: ArrowReader | None = None
        #: Seconds the last :meth:`write` waited to open its transaction (SQLite: for the write lock).
        self.last_write_wait = 0.0
        self._options = {"busy_timeout": busy_timeout, "pg_method": pg_method, "chunk_size": chunk_size,
                         "retries": retries, "arrow_reads": arrow_reads}
        try:
            self.schema_version = _version.ensure_schema(self.engine, self.url, create=create)
        except BaseException:
            self.engine.dispose()
            raise

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Store:
        """Same as ``Store(url, **kwargs)``."""
        return cls(url, **kwargs)

    # -- plumbing ------------------------------------------------------------------------------
    def _engine(self) -> Engine:
        if os.getpid() != self._pid:  # forked: never reuse the parent's connections
            self.engine.dispose(close=False)
            self._pid = os.getpid()
        return self.engine

    def _connect(self, write: bool = False) -> Connection:
        conn = self._engine().connect()
        return conn.execution_options(**{WRITE_OPTION: True}) if write else conn

    @property
    def reads_columnar(self) -> bool:
        """Whether reads go through the columnar (ADBC) SQLite reader (see ``arrow_reads``)."""
        return self._arrow_reader() is not None

    @property
    def tables(self) -> list[str]:
        """Names of the data tables."""
        return list(TABLE_NAMES)

    def _table(self, name: str) -> sa.Table:
        if name not in TABLE_NAMES:
            raise KeyError(f"unknown table {name!r}; the store has {', '.join(TABLE_NAMES)}")
        return METADATA.tables[name]

    def close(self) -> None:
        """Close every pooled connection."""
        if self._arrow is not None:
            self._arrow.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self):
        """Pickle as (URL, options): the copy opens its own connections (e.g. on a Dask worker)."""
        return _reopen, (self._url.render_as_string(hide_password=False), self._options)

    def __repr__(self) -> str:
        return f"Store({self.url!r}, schema_version={self.schema_version})"

    # -- writing -------------------------------------------------------------------------------
    def write(self, tables: Mapping[str, pd.DataFrame | None]) -> dict[str, int]:
        """Upsert every frame into its table, all in one transaction.

        Parameters
        ----------
        tables : mapping of str to DataFrame or list of DataFrame
            Table name to rows (or to several frames, e.g. rows that carry different columns,
            upserted in order). Names starting with ``_`` and ``None``/empty frames are skipped.
            Frame columns that are not table columns are ignored; table columns the frame lacks
            are NULL in new rows and keep their value in existing rows. NaN, NaT, None and pd.NA
            are stored as NULL.

        Returns
        -------
        dict of str to int
            Rows upserted per table (after collapsing rows that repeat a primary key to the last
            one; for ``ss_ztf``/``gaia_ztf`` to the largest ``candid``).

        Raises
        ------
        KeyError
            Unknown table name (nothing written).
        StoreDataError
            A value does not fit its column, or a primary-key column is missing (nothing written).
        StoreWriteError
            The database refused a row (e.g. NULL in a key); the whole transaction was rolled back.

        Notes
        -----
        Idempotent: writing the same frames again leaves the tables unchanged. ``ss_ztf`` and
        ``gaia_ztf`` rows are only replaced by rows with a ``candid`` >= the stored one.
        """
        jobs = []
        for name, value in tables.items():
            frames = value if isinstance(value, (list, tuple)) else [value]
            for frame in frames:
                if name.startswith("_") or frame is None or not len(frame):
                    continue
                table = self._table(name)
                guard = UPSERT_GUARDS.get(name)
                cols, sub = prepare(frame, table, guard)
                rows = None
                if self.backend == "sqlite" or self.pg_method == "executemany":
                    rows = executemany_rows(table, cols, sub, self.backend == "sqlite", self.chunk_size)
                jobs.append((name, table, cols, sub, guard, rows))
        counts = {name: 0 for name, *_ in jobs}
        if not jobs:
            return counts
        for attempt in range(self.retries + 1):
            current = None
            counts = dict.fromkeys(counts, 0)  # a retried transaction counts from zero again
            try:
                with self._connect(write=True) as conn:
                    asked = time.perf_counter()
                    transaction = conn.begin()  # SQLite: BEGIN IMMEDIATE waits for the write lock
                    self.last_write_wait = time.perf_counter() - asked
                    with transaction:
                        for name, table, cols, sub, guard, rows in jobs:
                            current = name
                            counts[name] += self._write_one(conn, table, cols, sub, guard, rows)
                return counts
            except StoreDataError:
                raise
            except Exception as exc:  # noqa: BLE001 - re-raised below with the table's name
                if is_retryable(exc) and attempt < self.retries:
                    log.info("store write retried (attempt %d) after: %s", attempt + 1, exc)
                    time.sleep(min(5.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
                    continue
                orig = getattr(exc, "orig", None) or exc
                what = f"writing table {current!r}" if current else "starting the write transaction"
                raise StoreWriteError(
                    f"{self.url}: {what} failed, transaction rolled back (nothing written): "
                    f"{type(orig).__name__}: {orig}"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_one(self, conn: Connection, table: sa.Table, cols: Sequence[str], sub: pd.DataFrame,
                   guard: str | None, rows: list[list[tuple]] | None = None) -> int:
        if self.backend == "postgresql" and self.pg_method == "copy":
            return write_copy(conn, table, cols, sub, guard, self.chunk_size)
        return write_executemany(conn, table, cols, sub, guard, self.chunk_size, rows)

    def register_step(self, step_id: str, name: str, version: str, comments: str = "",
                      date: dt.datetime | None = None) -> None:
        """Record (or update) a processing step in the ``step`` table."""
        date = date or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        self.write({"step": pd.DataFrame({"step_id": [step_id], "name": [name], "version": [version],
                                          "comments": [comments], "date": [date]})})

    def register_pipeline(self, pipeline_id: str, date: dt.datetime | None = None, **step_ids: str) -> None:
        """Record a pipeline (``step_id_corr=..., step_id_feat=..., step_id_clf=..., ...``)."""
        unknown = set(step_ids) - set(METADATA.tables["pipeline"].c.keys())
        if unknown:
            raise TypeError(f"register_pipeline: unknown step column(s) {sorted(unknown)}")
        date = date or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        row = {"pipeline_id": [pipeline_id], "date": [date], **{k: [v] for k, v in step_ids.items()}}
        self.write({"pipeline": pd.DataFrame(row)})

    # -- reading -------------------------------------------------------------------------------
    def _select(self, conn: Connection, table: sa.Table, stmt: sa.Select) -> pd.DataFrame:
        result = conn.execute(stmt)
        names = list(result.keys())
        return frame_from_rows(result.fetchall(), names, table)

    def _state_sql(self, table: sa.Table, names: Sequence[str], at_least: str | None = None) -> str:
        """``SELECT names FROM t WHERE oid IN <one bound list> [AND at_least >= <value>]``.

        The oid list is one bound parameter: a JSON array on SQLite, a ``text[]`` on PostgreSQL.
        """
        q = self.engine.dialect.identifier_preparer.quote
        cols = ", ".join(q(c) for c in names)
        mark = "%s" if self.backend == "postgresql" else "?"
        bound = f" AND {q(at_least)} >= {mark}" if at_least else ""
        if self.backend == "postgresql":
            return f"SELECT {cols} FROM {q(table.name)} WHERE oid = ANY(%s){bound}"
        return f"SELECT {cols} FROM {q(table.name)} WHERE oid IN (SELECT value FROM json_each(?)){bound}"

    def load_state(self, oids: Iterable[str],
                   columns: Mapping[str, Sequence[str]] | None = None,
                   at_least: Mapping[str, tuple[str, Any]] | None = None) -> dict[str, pd.DataFrame]:
        """Everything the correction needs for these objects.

        Parameters
        ----------
        oids : iterable of str
            Object ids (duplicates are fine; 10^3-10^4 are read in one query per table, the list
            bound as a single parameter: a JSON array on SQLite, a ``text[]`` on PostgreSQL).
        columns : mapping of str to sequence of str, optional
            Read only these columns (in table order) of the named tables, e.g.
            ``{"forced_photometry": ["oid", "pid", "parent_candid"]}``; other tables are read whole.
        at_least : mapping of str to (str, value), optional
            Read only the rows of the named tables whose column is >= the value, e.g.
            ``{"forced_photometry": ("pid", 1105152230115)}``; a value of ``None`` skips the table
            (its frame is empty). On key columns this is an index range, not a scan.

        Returns
        -------
        dict of str to DataFrame
            ``detection``, ``non_detection``, ``forced_photometry``, ``reference``, ``ps1_ztf``,
            ``object`` and ``magstat`` rows of these objects, read in one transaction (one
            consistent snapshot), every table column present and named as in the table; dtypes:
            float64, int64 (``Int64`` when NULLs are present; ``parent_candid`` always ``Int64``),
            bool (``boolean`` when NULLs are present), str.
        """
        columns = dict(columns or {})
        at_least = dict(at_least or {})
        for name, wanted in [*columns.items(), *((n, [c]) for n, (c, _) in at_least.items())]:
            if name not in STATE_TABLES:
                raise KeyError(f"load_state: {name!r} is not a state table ({', '.join(STATE_TABLES)})")
            unknown = [c for c in wanted if c not in METADATA.tables[name].c]
            if unknown:
                raise KeyError(f"load_state: table {name!r} has no column(s) {unknown}")
        unique, param = self._oid_param(oids)
        plan = []  # (table, column names, sql and parameters, or None for an empty frame)
        for name in STATE_TABLES:
            table = METADATA.tables[name]
            wanted = set(columns.get(name, ()))
            names = [c.name for c in table.columns if not wanted or c.name in wanted]
            bound_col, bound = at_least.get(name, (None, None))
            query = None
            if unique and not (bound_col and bound is None):
                query = (self._state_sql(table, names, bound_col),
                         (param, _plain(bound)) if bound_col else (param,))
            plan.append((table, names, query))
        return self._read_plan(plan)

    def read_objects(self, name: str, oids: Iterable[str], columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of table ``name`` of these objects (one query; columnar on SQLite, see ``arrow_reads``).

        Same dtypes as :meth:`load_state`; rows in no particular order.
        """
        table = self._table(name)
        if "oid" not in table.c:
            raise KeyError(f"table {name!r} has no oid column")
        wanted = set(columns or ())
        unknown = wanted - set(table.c.keys())
        if unknown:
            raise KeyError(f"table {name!r} has no column(s) {sorted(unknown)}")
        names = [c.name for c in table.columns if not wanted or c.name in wanted]
        unique, param = self._oid_param(oids)
        query = (self._state_sql(table, names), (param,)) if unique else None
        return self._read_plan([(table, names, query)])[name]

    def _oid_param(self, oids: Iterable[str]) -> tuple[list[str], Any]:
        """Distinct object ids and the one bound parameter that carries them (see ``_state_sql``)."""
        unique = [str(o) for o in pd.unique(pd.Series(list(oids), dtype=object).dropna())]
        return unique, (unique if self.backend == "postgresql" else json.dumps(unique))

    def _read_plan(self, plan) -> dict[str, pd.DataFrame]:
        """Frames of ``(table, column names, (sql, parameters) or None)`` read in one transaction."""
        if self._arrow_reader() is not None:
            try:
                return self._read_plan_arrow(plan)
            except Exception as exc:  # noqa: BLE001 - the sqlite3 path below gives the same frames
                log.debug("store %s: columnar read failed (%s), reading rows instead", self.url, exc)
        out: dict[str, pd.DataFrame] = {}
        with self._connect() as conn, conn.begin():
            if self.backend == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cursor = conn.connection.driver_connection.cursor()
            try:
                for table, names, query in plan:
                    rows: list = []
                    if query is not None:
                        cursor.execute(*query)
                        rows = cursor.fetchall()
                    out[table.name] = frame_from_rows(rows, names, table)
            finally:
                cursor.close()
        return out

    def _arrow_reader(self) -> ArrowReader | None:
        """The columnar (ADBC) reader of a SQLite file store, when enabled and installed."""
        if self._arrow is None and self.arrow_reads and self.backend == "sqlite" \
                and self._url.database not in (None, "", ":memory:") and adbc_available():
            self._arrow = ArrowReader(self._url.database)
        return self._arrow

    def _read_plan_arrow(self, plan) -> dict[str, pd.DataFrame]:
        queries = [q for _, _, q in plan if q is not None]
        results = iter(self._arrow.read(queries))
        return {table.name: frame_from_arrow(next(results), names, table) if q is not None
                else frame_from_rows([], names, table) for table, names, q in plan}

    def read_table(self, name: str, where: Mapping[str, Any] | None = None,
                   columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Rows of one table.

        Parameters
        ----------
        name : str
            Table name (see :attr:`tables`).
        where : dict, optional
            Column to value (equality; NULL for None) or to a list/array/Series of values (IN).
        columns : sequence of str, optional
            Columns to return (default: all, in table order).
        """
        table = self._table(name)
        cols = list(columns) if columns is not None else [c.name for c in table.columns]
        unknown = [c for c in cols if c not in table.c]
        if unknown:
            raise KeyError(f"table {name!r} has no column(s) {unknown}")
        stmt = sa.select(*(table.c[c] for c in cols))
        for col, value in (where or {}).items():
            if col not in table.c:
                raise KeyError(f"table {name!r} has no column {col!r}")
            c = table.c[col]
            if isinstance(value, (list, tuple, set, np.ndarray, pd.Series, pd.Index)):
                values = [v.item() if isinstance(v, np.generic) else v for v in value]
                stmt = stmt.where(self._in_list(c, values))
            elif value is None:
                stmt = stmt.where(c.is_(None))
            else:
                stmt = stmt.where(c == (value.item() if isinstance(value, np.generic) else value))
        stmt = stmt.order_by(*table.primary_key.columns)
        with self._connect() as conn, conn.begin():
            return self._select(conn, table, stmt)

    def _in_list(self, column: sa.Column, values: list) -> sa.ColumnElement:
        """``column IN values`` with the list bound as one parameter (no limit on its length)."""
        if self.backend == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.bindparam(None, values, type_=ARRAY(column.type)))
        each = sa.select(sa.column("value")).select_from(
            sa.func.json_each(sa.bindparam(None, json.dumps(values, default=str), type_=sa.Text)))
        return column.in_(each.scalar_subquery())

    def count(self, name: str) -> int:
        """Number of rows of a table."""
        table = self._table(name)
        with self._connect() as conn, conn.begin():
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


#: SQLite page cache per connection (KiB, negative in the pragma): the primary-key indexes of the
#: big tables (detection, forced_photometry, feature) stay in memory during bulk upserts.
SQLITE_CACHE_KIB = 131_072


def _sqlite_tuning(dbapi_conn, _record) -> None:
    """Per-connection SQLite settings that change speed only, never results."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.execute("PRAGMA temp_store=MEMORY")
    finally:
        cur.close()


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value DB-API drivers accept."""
    return value.item() if isinstance(value, np.generic) else value


def _reopen(url: str, options: dict) -> Store:
    return Store(url, create=False, **options)
