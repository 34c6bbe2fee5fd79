"""Export a store table (optionally filtered) or a SQL query to Parquet or CSV, streamed in chunks."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from alerce.store import METADATA, TABLE_NAMES, Store
from alerce.store.convert import frame_from_rows, kind

#: Export formats.
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "csv")


def _coerce(table: sa.Table, column: str, value: Any) -> Any:
    """A ``--where`` string turned into the column's Python type."""
    if not isinstance(value, str):
        return value
    k = kind(table.c[column].type)
    try:
        if k == "int":
            return int(value)
        if k == "float":
            return float(value)
    except ValueError:
        raise ValueError(f"--where {column}={value!r}: column {column!r} of table {table.name!r} "
                         f"holds {k} values") from None
    if k == "bool":
        low = value.lower()
        if low in ("1", "true", "t", "yes"):
            return True
        if low in ("0", "false", "f", "no"):
            return False
        raise ValueError(f"--where {column}={value!r}: column {column!r} is boolean (true/false)")
    return value


def build_statement(table_or_query: str | sa.Select, where: Mapping[str, Any] | None = None
                    ) -> tuple[sa.Executable, sa.Table | None]:
    """The statement to export and the table giving its column types (None for raw SQL).

    ``table_or_query`` is a table name, a SQLAlchemy ``Select`` or a SQL ``SELECT`` string.
    ``where`` (table names only) maps columns to a value (equality) or a list (IN).
    """
    if isinstance(table_or_query, sa.Select):
        if where:
            raise ValueError("where= only applies to a table name, not to a query")
        return table_or_query, None
    text = str(table_or_query).strip()
    if text.lower().startswith(("select ", "with ")):
        if where:
            raise ValueError("where= only applies to a table name, not to a query")
        return sa.text(text), None
    if text not in TABLE_NAMES:
        raise KeyError(f"unknown table {text!r}; tables: {', '.join(TABLE_NAMES)}")
    table = METADATA.tables[text]
    stmt = sa.select(*table.c)
    for col, value in (where or {}).items():
        if col not in table.c:
            raise KeyError(f"table {text!r} has no column {col!r}; columns: {[c.name for c in table.c]}")
        if isinstance(value, (list, tuple, set)):
            stmt = stmt.where(table.c[col].in_([_coerce(table, col, v) for v in value]))
        elif value is None:
            stmt = stmt.where(table.c[col].is_(None))
        else:
            stmt = stmt.where(table.c[col] == _coerce(table, col, value))
    return stmt.order_by(*table.primary_key.columns), table


def _frame(rows: Sequence, names: Sequence[str], table: sa.Table | None) -> pd.DataFrame:
    if table is not None:
        return frame_from_rows(rows, names, table)
    return pd.DataFrame.from_records(list(rows), columns=list(names))


def export(store: str | Store, table_or_query: str | sa.Select, path: str | os.PathLike,
           format: str = "parquet", *, where: Mapping[str, Any] | None = None,
           chunk_size: int = 100_000) -> int:
    """Write a table or query result to ``path``; return the number of rows written.

    Parameters
    ----------
    store : str or Store
        Store URL or open store.
    table_or_query : str or Select
        Table name (see :data:`alerce.store.TABLE_NAMES`), a SQL ``SELECT`` string or a
        SQLAlchemy ``Select``.
    path : path
        Output file.
    format : {"parquet", "csv"}
    where : dict, optional
        Column -> value (or list of values) filters for a table name.
    chunk_size : int
        Rows fetched and written at a time (memory stays bounded).

    Raises
    ------
    KeyError
        Unknown table or column (the message lists the valid ones).
    ValueError
        Unknown format or a ``where`` value that does not fit its column.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; valid formats: {', '.join(EXPORT_FORMATS)}")
    stmt, table = build_statement(table_or_query, where)
    own = not isinstance(store, Store)
    st = Store(str(store), create=False) if own else store
    path = os.fspath(path)
    total = 0
    writer = None
    schema = None
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with st.engine.connect().execution_options(stream_results=True) as conn:
            result = conn.execute(stmt)
            names = list(result.keys())
            first = True
            while True:
                rows = result.fetchmany(chunk_size)
                if not rows and not first:
                    break
                df = _frame(rows, names, table)
                if format == "csv":
                    df.to_csv(path, mode="w" if first else "a", header=first, index=False)
                else:
                    if schema is None:
                        arrow = pa.Table.from_pandas(df, preserve_index=False)
                        schema = arrow.schema
                        writer = pq.ParquetWriter(path, schema)
                    else:
                        arrow = pa.Table.from_pandas(df, schema=schema, preserve_index=False)
                    writer.write_table(arrow)
                total += len(df)
                first = False
                if not rows:
                    break
    finally:
        if writer is not None:
            writer.close()
        if own:
            st.close()
    return total


def _parse_where(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"alerce export: --where expects col=value, got {item!r}")
        col, value = item.split("=", 1)
        if col in out:  # repeated column: IN list
            prev = out[col]
            out[col] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[col] = value
    return out


def main_export(argv: Sequence[str] | None = None) -> int:
    """``alerce export --store URL --table NAME [--where col=value ...] --out FILE [--format F]``.

    The format defaults to the extension of ``--out`` (``.csv`` -> csv, else parquet). A column
    given several times in ``--where`` matches any of its values.
    """
    p = argparse.ArgumentParser(prog="alerce export", description="Export a store table to Parquet or CSV.")
    p.add_argument("--store", required=True, help="store URL (sqlite:///alerce.db, postgresql+psycopg://...)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--table", help=f"table name ({', '.join(TABLE_NAMES)})")
    src.add_argument("--query", help="a SQL SELECT statement")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="equality filter (repeatable; a repeated column means IN)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--format", choices=EXPORT_FORMATS, help="default: from the --out extension")
    p.add_argument("--chunk-size", type=int, default=100_000)
    args = p.parse_args(argv)
    fmt = args.format or ("csv" if str(args.out).lower().endswith(".csv") else "parquet")
    try:
        n = export(args.store, args.table or args.query, args.out, fmt, where=_parse_where(args.where),
                   chunk_size=args.chunk_size)
    except (KeyError, ValueError) as exc:
        print(f"alerce export: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} rows to {args.out}")
    return 0
