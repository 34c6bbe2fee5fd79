"""Benchmark: detection rows/s of ``Store.write`` on SQLite and PostgreSQL.

For each back end, a synthetic frame of ``--rows`` detections (every column of the ``detection``
table, realistic dtypes, NaNs) is written three ways in the same process:

* baseline: pandas ``DataFrame.to_sql`` (plain INSERT, ``method=None``, into an empty table with the
  same columns and no primary key; it is not idempotent);
* ``Store.write`` into an empty store (INSERT ... ON CONFLICT path), and again with the same rows
  (every row hits the conflict and is updated: the replay case);
* on PostgreSQL both bulk paths: ``executemany`` and ``COPY`` + ``INSERT ... SELECT ... ON CONFLICT``.

The PostgreSQL part uses ``--pg-url`` or starts a throw-away server with ``tests/pg.py`` (skipped when
the server binaries are absent). Each run ends with a check that the store holds every row once.

Usage::

    python benchmarks/bench_store.py [--rows 100000] [--pg-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from alerce.batch import DETECTION_COLUMNS
from alerce.store import METADATA, Store

ROOT = Path(__file__).resolve().parents[1]


def detections(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic detections with every column of the ``detection`` table."""
    rng = np.random.default_rng(seed)
    per = 50
    oid = pd.Series([f"ZTF22bench{i:06d}" for i in range(n // per + 1)], dtype="str").repeat(per).iloc[:n]
    out = {"oid": oid.reset_index(drop=True), "candid": 10**18 + np.arange(n, dtype=np.int64)}
    for col in METADATA.tables["detection"].columns:
        name = col.name
        if name in out:
            continue
        t = type(col.type).__name__
        if t == "Double":
            v = rng.normal(18, 1, n)
            v[rng.random(n) < 0.05] = np.nan
            out[name] = v
        elif t in ("Integer", "BigInteger"):
            out[name] = rng.integers(1, 3, n).astype(np.int64)
        elif t == "Boolean":
            out[name] = rng.random(n) < 0.5
        else:
            out[name] = pd.Series(["t17_f5_c3"] * n, dtype="str")
    out["parent_candid"] = pd.array(np.where(rng.random(n) < 0.1, pd.NA, out["candid"] + 1), dtype="Int64")
    df = pd.DataFrame(out)
    assert set(DETECTION_COLUMNS) <= set(df.columns)
    return df


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _to_sql_baseline(url: str, df: pd.DataFrame) -> float:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS detection_to_sql")
        return _timed(lambda: df.to_sql("detection_to_sql", engine, if_exists="append", index=False,
                                        chunksize=50_000))
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS detection_to_sql")
        engine.dispose()


def _read_sql_baseline(url: str, oids: list[str]) -> float:
    engine = sa.create_engine(url)
    stmt = sa.select(METADATA.tables["detection"]).where(METADATA.tables["detection"].c.oid.in_(oids))
    try:
        with engine.connect() as conn:
            return _timed(lambda: pd.read_sql(stmt, conn))
    finally:
        engine.dispose()


def bench(url: str, df: pd.DataFrame, label: str, methods: tuple[str, ...]) -> list[tuple[str, float, float]]:
    """Rows/s of each operation and of its baseline (to_sql for writes, read_sql for reads)."""
    n = len(df)
    rows = []
    base = _to_sql_baseline(url, df)
    oids = list(pd.unique(df["oid"])[:2000])
    n_read = int(df["oid"].isin(oids).sum())
    rows.append((f"{label} pandas to_sql (write baseline)", n / base, n / base))
    for method in methods:
        with Store(url, pg_method=method) as st:
            with st.engine.begin() as conn:
                conn.exec_driver_sql("DELETE FROM detection")
            first = _timed(lambda st=st: st.write({"detection": df}))
            again = _timed(lambda st=st: st.write({"detection": df}))
            assert st.count("detection") == n
            rows.append((f"{label} Store.write {method} (insert)", n / first, n / base))
            rows.append((f"{label} Store.write {method} (upsert existing)", n / again, n / base))
    read_base = _read_sql_baseline(url, oids)
    with Store(url) as st:
        t_load = _timed(lambda: st.load_state(oids))
    rows.append((f"{label} pandas read_sql, 2000 oids (read baseline)", n_read / read_base, n_read / read_base))
    rows.append((f"{label} Store.load_state, 2000 oids (7 tables)", n_read / t_load, n_read / read_base))
    for name, rate, baseline in rows:
        print(f"{name:<58s} {rate:>10,.0f} detection rows/s   x{rate / baseline:5.2f} vs baseline")
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--pg-url", help="PostgreSQL URL (default: start a throw-away server)")
    args = p.parse_args(argv)
    df = detections(args.rows)
    print(f"{args.rows:,} detections, {df.shape[1]} columns")
    with tempfile.TemporaryDirectory() as tmp:
        bench(f"sqlite:///{tmp}/bench.db", df, "SQLite", ("executemany",))
    server = None
    url = args.pg_url
    if url is None:
        sys.path.insert(0, str(ROOT / "tests"))
        try:
            from pg import PgServer, find_pg_bin
        except ImportError:
            find_pg_bin = lambda: None  # noqa: E731
        bindir = find_pg_bin()
        if bindir is None:
            print("PostgreSQL: skipped (no server binaries; pass --pg-url)")
            return
        server = PgServer(bindir)
        server.start()
        url = server.url(server.create_database())
    try:
        bench(url, df, "PostgreSQL", ("executemany", "copy"))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
