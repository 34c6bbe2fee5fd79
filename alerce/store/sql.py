"""Upsert statements and the two bulk-write paths (``executemany`` and PostgreSQL ``COPY``).

Both SQLite (>= 3.24) and PostgreSQL accept the same ``INSERT ... ON CONFLICT (key) DO UPDATE SET
col = excluded.col [WHERE ...]`` syntax, so one builder serves both; only the placeholder differs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .convert import _float_values, column_list, column_values, kind

#: Rows per ``executemany`` call / ``COPY`` chunk.
DEFAULT_CHUNK_SIZE = 50_000


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def conflict_clause(conn: Connection, table: sa.Table, cols: Sequence[str], guard: str | None) -> str:
    """``ON CONFLICT (...) DO UPDATE SET ... [WHERE guard]`` (``DO NOTHING`` with no value columns).

    Only the columns present in the frame are updated: columns a frame does not carry keep their
    stored value. With a ``guard`` column the stored row is only replaced when the incoming
    value is >= the stored one (or the stored one is NULL).
    """
    key = [c.name for c in table.primary_key.columns]
    t = _q(conn, table.name)
    target = ", ".join(_q(conn, k) for k in key)
    update = [c for c in cols if c not in key]
    if not update:
        return f"ON CONFLICT ({target}) DO NOTHING"
    sets = ", ".join(f"{_q(conn, c)} = excluded.{_q(conn, c)}" for c in update)
    sql = f"ON CONFLICT ({target}) DO UPDATE SET {sets}"
    if guard and guard in cols:
        g = _q(conn, guard)
        sql += f" WHERE {t}.{g} IS NULL OR excluded.{g} >= {t}.{g}"
    return sql


def upsert_values_sql(conn: Connection, table: sa.Table, cols: Sequence[str], guard: str | None) -> str:
    """``INSERT INTO t (cols) VALUES (?, ...) ON CONFLICT ...`` for ``executemany``."""
    pg = conn.dialect.name == "postgresql"
    marks = []
    for c in cols:
        if pg and kind(table.c[c].type) == "json":
            marks.append("CAST(%s AS JSON)")
        else:
            marks.append("%s" if pg else "?")
    names = ", ".join(_q(conn, c) for c in cols)
    return (f"INSERT INTO {_q(conn, table.name)} ({names}) VALUES ({', '.join(marks)}) "
            + conflict_clause(conn, table, cols, guard))


def executemany_rows(table: sa.Table, cols: Sequence[str], frame: pd.DataFrame, sqlite: bool,
                     chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[list[tuple]]:
    """Row tuples of plain Python values for ``executemany``, ``chunk_size`` rows per list.

    Built before the write transaction opens, so a SQLite writer holds the lock only while the
    database works.
    """
    chunks = []
    for start in range(0, len(frame), chunk_size):
        part = frame.iloc[start:start + chunk_size]
        arrays = [column_list(part[c], table.c[c].type, table=table.name, column=c) for c in cols]
        if sqlite:  # store timestamps as ISO text, as SQLAlchemy does (no sqlite3 default adapter)
            for i, c in enumerate(cols):
                if kind(table.c[c].type) == "datetime":
                    arrays[i] = [None if v is None else v.isoformat(" ") for v in arrays[i]]
        chunks.append(list(zip(*arrays, strict=False)))
    return chunks


def write_executemany(conn: Connection, table: sa.Table, cols: Sequence[str], frame: pd.DataFrame,
                      guard: str | None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                      rows: list[list[tuple]] | None = None) -> int:
    """Upsert ``frame`` with ``executemany`` of a single-row upsert, ``chunk_size`` rows at a time.

    ``rows``: the frame's :func:`executemany_rows`, when already built.
    """
    sql = upsert_values_sql(conn, table, cols, guard)
    if rows is None:
        rows = executemany_rows(table, cols, frame, conn.dialect.name == "sqlite", chunk_size)
    cursor = conn.connection.driver_connection.cursor()
    try:
        for chunk in rows:
            cursor.executemany(sql, chunk)
    finally:
        cursor.close()
    return len(frame)


def _arrow_column(series: pd.Series, coltype: sa.types.TypeEngine, table: str, column: str):
    import pyarrow as pa

    k = kind(coltype)
    if k == "float":
        return pa.array(_float_values(series, table, column).to_numpy(), from_pandas=True)
    values = column_values(series, coltype, table=table, column=column)
    if k == "int":
        return pa.array(pd.array(values, dtype="Int64"))
    if k == "bool":
        return pa.array(pd.array(values, dtype="boolean"))
    if k == "datetime":
        return pa.array([None if v is None else v.isoformat(" ") for v in values], type=pa.string())
    return pa.array(values, type=pa.string())


def _csv_chunk(part: pd.DataFrame, table: sa.Table, cols: Sequence[str]) -> bytes:
    """CSV for ``COPY``: every non-null value quoted, NULL as an unquoted empty field (pyarrow writer)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrays = [_arrow_column(part[c], table.c[c].type, table.name, c) for c in cols]
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(arrays, names=list(cols)), buf,
                    pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return buf.getvalue()


def write_copy(conn: Connection, table: sa.Table, cols: Sequence[str], frame: pd.DataFrame,
               guard: str | None, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """PostgreSQL: ``COPY`` (CSV) into a temporary table, then one ``INSERT ... SELECT ... ON CONFLICT``.

    The temporary table lives until the end of the transaction (``ON COMMIT DROP``). In the CSV
    every value is quoted and NULL is an unquoted empty field, so empty strings survive.
    """
    q = lambda n: _q(conn, n)  # noqa: E731
    tmp = q(f"_alerce_tmp_{table.name}")
    names = ", ".join(q(c) for c in cols)
    dbapi = conn.connection.driver_connection
    with dbapi.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {q(table.name)} INCLUDING DEFAULTS) "
                    "ON COMMIT DROP")
        insert = (f"INSERT INTO {q(table.name)} ({names}) SELECT {names} FROM {tmp} "
                  + conflict_clause(conn, table, cols, guard))
        for start in range(0, len(frame), chunk_size):
            text = _csv_chunk(frame.iloc[start:start + chunk_size], table, cols)
            with cur.copy(f"COPY {tmp} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
            cur.execute(insert)
            cur.execute(f"TRUNCATE {tmp}")
    return len(frame)
