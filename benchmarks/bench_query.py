"""Benchmark of the query API: cone searches and query latency on a store of >= 10^6 detections.

Builds (synthetic frames, seeded) a SQLite store with N_OBJ objects x DET_PER_OBJ detections and
probabilities, then measures:

* cone searches/s (radius 5 arcsec, random centres) with the SQLite prefilter (dec band + RA window in
  SQL, exact haversine in numpy) vs a full-scan baseline (read every position, haversine in numpy);
  the prefilter is timed without and with an index on ``object(meandec)`` (created by the benchmark);
* on PostgreSQL (throw-away server from ``tests/pg.py``, when the binaries are installed): the same
  objects, ``q3c_radial_query`` with the store's q3c index vs a non-indexed exact-distance scan;
* ``query_objects`` / ``query_detections`` latency.

Run: ``python benchmarks/bench_query.py [--objects 100000] [--cones 200]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from alerce.query import AlerceQuery
from alerce.query.cone import angular_distance
from alerce.store import METADATA, Store


def frames(n_obj: int, det_per_obj: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n_obj)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n_obj)))
    oids = np.char.add("ZTF", np.char.zfill(np.arange(n_obj).astype(str), 9))
    first = rng.uniform(58000, 60000, n_obj)
    obj = pd.DataFrame({"oid": oids, "meanra": ra, "meandec": dec, "ndet": det_per_obj, "firstmjd": first,
                        "lastmjd": first + 100, "corrected": rng.random(n_obj) < 0.3})
    n = n_obj * det_per_obj
    det = pd.DataFrame({"oid": np.repeat(oids, det_per_obj), "candid": np.arange(n, dtype=np.int64) + 10**15,
                        "mjd": np.repeat(first, det_per_obj) + np.tile(np.arange(det_per_obj) * 3.0, n_obj),
                        "fid": rng.integers(1, 3, n), "magpsf": rng.normal(18, 1, n).astype("float64"),
                        "sigmapsf": 0.05, "ra": np.repeat(ra, det_per_obj), "dec": np.repeat(dec, det_per_obj)})
    classes = np.array(["SNIa", "SNII", "QSO", "RRL", "AGN"])
    prob = pd.DataFrame({"oid": oids, "class_name": classes[rng.integers(0, 5, n_obj)],
                         "classifier_name": "lc_classifier", "classifier_version": "1.0",
                         "probability": rng.uniform(0.2, 1, n_obj), "ranking": 1})
    tax = pd.DataFrame({"classifier_name": ["lc_classifier"], "classifier_version": ["1.0"],
                        "classes": [list(classes)]})
    return {"object": obj, "detection": det, "probability": prob, "taxonomy": tax}


def full_scan(store: Store, ra: float, dec: float, radius_arcsec: float) -> list[str]:
    """Baseline: read every object's position, exact distance in numpy."""
    obj = METADATA.tables["object"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(obj.c.oid, obj.c.meanra, obj.c.meandec)).fetchall()
    oid, r, d = zip(*rows)
    keep = angular_distance(np.array(r, float), np.array(d, float), ra, dec) <= radius_arcsec / 3600
    return [o for o, k in zip(oid, keep) if k]


def timed(fn, reps: int) -> float:
    t0 = time.perf_counter()
    for i in range(reps):
        fn(i)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--det-per-obj", type=int, default=10)
    p.add_argument("--cones", type=int, default=200)
    p.add_argument("--radius", type=float, default=5.0, help="arcsec")
    args = p.parse_args()
    rng = np.random.default_rng(1)
    fr = frames(args.objects, args.det_per_obj)
    obj = fr["object"]
    # centres on real objects (so cones are not empty) and random ones
    pick = rng.choice(len(obj), args.cones)
    centres = np.column_stack([obj["meanra"].to_numpy()[pick], obj["meandec"].to_numpy()[pick]])
    centres[::2] = np.column_stack([rng.uniform(0, 360, len(centres[::2])),
                                    np.degrees(np.arcsin(rng.uniform(-1, 1, len(centres[::2]))))])
    R = args.radius
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        t0 = time.perf_counter()
        with Store(url) as st:
            st.write(fr)
        print(f"SQLite build: {args.objects} objects, {len(fr['detection'])} detections in "
              f"{time.perf_counter() - t0:.1f} s")
        with Store(url) as st, AlerceQuery(st) as q:
            n_scan = max(3, args.cones // 20)
            t_scan = timed(lambda i: full_scan(st, *centres[i], R), n_scan)
            t_pre = timed(lambda i: q.cone_oids(*centres[i], R), args.cones)
            for i in range(min(20, args.cones)):  # same answers
                assert sorted(q.cone_oids(*centres[i], R)) == sorted(full_scan(st, *centres[i], R))
            with st.engine.begin() as conn:
                conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS bench_ix_object_meandec ON object (meandec)")
            t_idx = timed(lambda i: q.cone_oids(*centres[i], R), args.cones)
            t_obj = timed(lambda i: q.query_objects(ra=centres[i][0], dec=centres[i][1], radius=R), args.cones)
            print(f"SQLite cone search (r={R}\"): full scan {1 / t_scan:8.1f}/s | prefilter, no dec index "
                  f"{1 / t_pre:8.1f}/s (x{t_scan / t_pre:.1f}) | prefilter + dec index {1 / t_idx:8.1f}/s "
                  f"(x{t_scan / t_idx:.1f}) | query_objects(ra,dec,radius) {1000 * t_obj:.2f} ms")
            oids = obj["oid"].to_numpy()
            lat = {
                "query_objects(ndet, firstmjd range, order firstmjd, 100 rows)": lambda i: q.query_objects(
                    ndet=[5, 20], firstmjd=[58500 + i, 59500], order_by="firstmjd", page_size=100),
                "query_objects(classifier, class, probability>=0.9, 100 rows)": lambda i: q.query_objects(
                    classifier="lc_classifier", class_name="SNIa", probability=0.9, page_size=100, page=1 + i % 5),
                "query_objects(count=True, ndet range)": lambda i: q.query_objects(ndet=[1, 100], count=True),
                "query_detections(oid)": lambda i: q.query_detections(oids[i * 997 % len(oids)]),
                "query_lightcurve(oid) json": lambda i: q.query_lightcurve(oids[i * 991 % len(oids)], "json"),
            }
            for name, fn in lat.items():
                print(f"SQLite {name}: {1000 * timed(fn, 10):.1f} ms")
    bench_pg(obj, centres, R, args.cones)


def bench_pg(obj: pd.DataFrame, centres: np.ndarray, R: float, n_cones: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    try:
        import psycopg  # noqa: F401
        from pg import PgServer, find_pg_bin
    except ImportError as exc:
        print(f"PostgreSQL: skipped ({exc})")
        return
    bindir = find_pg_bin()
    if bindir is None:
        print("PostgreSQL: skipped (server binaries not found)")
        return
    server = PgServer(bindir)
    try:
        server.start()
        url = server.url(server.create_database())
        t0 = time.perf_counter()
        with Store(url) as st:
            st.write({"object": obj})
            print(f"PostgreSQL build: {len(obj)} objects in {time.perf_counter() - t0:.1f} s")
            with st.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE object")
            with AlerceQuery(st) as q:
                if not q.has_q3c:
                    print("PostgreSQL: q3c not installed; only the prefilter path is available")
                    t_pre = timed(lambda i: q.cone_oids(*centres[i], R), n_cones)
                    print(f"PostgreSQL prefilter cone search: {1 / t_pre:.1f}/s")
                    return
                r = R / 3600
                obj_t = METADATA.tables["object"]
                q3c = lambda i: q._fetch(sa.select(obj_t.c.oid).where(  # noqa: E731
                    sa.func.q3c_radial_query(obj_t.c.meanra, obj_t.c.meandec, *centres[i], r)))
                # baseline: exact distance on every row (q3c_dist is not indexable)
                scan = lambda i: q._fetch(sa.select(obj_t.c.oid).where(  # noqa: E731
                    sa.func.q3c_dist(obj_t.c.meanra, obj_t.c.meandec, *centres[i]) <= r))
                for i in range(min(20, n_cones)):
                    assert sorted(q3c(i)["oid"]) == sorted(scan(i)["oid"]) == sorted(q.cone_oids(*centres[i], R))
                t_scan = timed(scan, max(3, n_cones // 20))
                t_q3c = timed(q3c, n_cones)
                t_pre = timed(lambda i: q.cone_oids(*centres[i], R), n_cones)
                t_obj = timed(lambda i: q.query_objects(ra=centres[i][0], dec=centres[i][1], radius=R), n_cones)
                print(f"PostgreSQL cone search (r={R}\"): non-indexed scan {1 / t_scan:8.1f}/s | q3c index "
                      f"{1 / t_q3c:8.1f}/s (x{t_scan / t_q3c:.1f}) | prefilter path {1 / t_pre:8.1f}/s "
                      f"(x{t_scan / t_pre:.1f}) | query_objects(ra,dec,radius) {1000 * t_obj:.2f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
