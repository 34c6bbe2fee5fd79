"""Benchmark: per-stage profile of ``run_batch`` (one process, one thread, SQLite).

A simulated night (``simulate(dir, n_objects=2000, seed=1)``) is decoded once with
``read_alerts(keep_stamps=False)`` and split into batches of 1000 alerts. Each batch goes through
the stages of :func:`alerce.streams.steps.run_batch`, timed separately:

``load_state``  ``Store.load_state(oids)``
``process``     ``process_alerts`` (merge, correction, forced photometry, metadata tables)
``science``     ``science.run`` with ``features=True``
``write``       ``Store.write(tables)``

Pass 1 starts from an empty store (replay); pass 2 replays the same alerts again, every object
already stored (the live case: large stored light curves, few changed rows). Since the feature step
reuses the stored values of unchanged bands (fifth session), pass 2 is its best case: no band has a
new point. A live night gets new points in about half of the bands.

Baseline for the ratio: the stage totals measured before the optimisation work, on this machine
(2 shared cores), kept below as "before"; the script prints the current totals and the ratio.

Before / after (2026-11-25, 2 shared cores, other jobs running; 4 batches, 3,980 alerts; seconds
per stage summed over batches; "before" = commit 73d427e's steps/store code, run just before)::

                    load_state  process  science  write   total  alerts/s
    pass1 before        2.14      1.13     4.08    5.39   12.74     312
    pass1 after         1.20      1.19     5.12*   4.79   12.30     324
    pass2 before        4.40      1.10     2.97    1.91   10.38     384
    pass2 after         2.77      1.20     5.38*   1.57   10.92     364

    * science (feature kernels, not touched here) swings 3-6 s between runs on the shared machine;
      compare load_state and write. Without science: pass1 8.66 -> 7.18 s, pass2 7.41 -> 5.54 s.

Usage::

    python benchmarks/bench_pipeline_profile.py [--n-objects 2000] [--batch-size 1000]
        [--night DIR] [--seed 1] [--profile pass1|pass2|both] [--db PATH]
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import pstats
import shutil
import tempfile
import time
import warnings
from pathlib import Path

#: Stage seconds (summed over batches) measured at the start of the work, same machine and
#: arguments (n_objects=2000, seed=1, batch_size=1000).
BEFORE = {
    "pass1": {"load_state": 2.14, "process": 1.13, "science": 4.08, "write": 5.39, "alerts": 3980},
    "pass2": {"load_state": 4.40, "process": 1.10, "science": 2.97, "write": 1.91, "alerts": 3980},
}

STAGES = ("load_state", "process", "science", "write")


def split_batches(batch, size: int):
    """Consecutive batches of ``size`` alerts (in decoded order), with their rows of every frame."""
    from alerce.batch import AlertBatch

    alerts = batch.alerts
    out = []
    for start in range(0, len(alerts), size):
        part = alerts.iloc[start:start + size]
        cands = set(part["candid"].tolist())

        def rows(df, cands=cands, col="parent_candid"):
            if df is None or not len(df) or col not in df:
                return df
            return df[df[col].isin(cands)].reset_index(drop=True)

        dets = batch.detections
        dets = dets[dets["parent_candid"].isin(cands) | dets["candid"].isin(cands)].reset_index(drop=True)
        out.append(AlertBatch(alerts=part.reset_index(drop=True), detections=dets,
                              non_detections=rows(batch.non_detections),
                              forced_photometry=rows(batch.forced_photometry),
                              stamps=batch.stamps.iloc[:0]))
    return out


def run_pass(batches, store, config) -> dict[str, float]:
    """Run every batch through the four stages; return seconds per stage (and the alert count)."""
    from alerce.streams import science, steps
    from alerce.streams.steps import process_alerts

    # as run_batch does (older versions read every column of every state table)
    columns = getattr(steps, "STATE_COLUMNS", None)
    kwargs = {"columns": columns} if columns else {}
    bounds = getattr(steps, "state_bounds", None)
    to_write = getattr(steps, "without_unchanged_features", lambda _store, tables: tables)
    read_features = getattr(steps, "read_stored_features", None)  # reused in science and write
    t = dict.fromkeys(STAGES, 0.0)
    n = 0
    for batch in batches:
        t0 = time.perf_counter()
        extra = {"at_least": bounds(batch)} if bounds else {}
        state = store.load_state(list(batch.oids), **kwargs, **extra)
        stored = read_features(store, batch.oids) if read_features else None
        if stored is not None:
            state["feature"] = stored
        t1 = time.perf_counter()
        processed = process_alerts(batch, state)
        t2 = time.perf_counter()
        tables = processed.tables
        tables.update(science.run(batch, processed, state, config))
        t3 = time.perf_counter()
        store.write(to_write(store, tables, stored) if read_features else to_write(store, tables))
        t4 = time.perf_counter()
        t["load_state"] += t1 - t0
        t["process"] += t2 - t1
        t["science"] += t3 - t2
        t["write"] += t4 - t3
        n += len(batch.alerts)
    t["alerts"] = n
    return t


def _line(name: str, t: dict) -> str:
    total = sum(t[s] for s in STAGES)
    rate = t["alerts"] / total if total else float("nan")
    cells = "  ".join(f"{t[s]:8.2f}" for s in STAGES)
    return f"{name:<16}{cells}  {total:8.2f}  {rate:9,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-objects", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--night", help="existing simulated night directory (skips simulation)")
    parser.add_argument("--db", help="SQLite file to write (default: a temporary file)")
    parser.add_argument("--profile", choices=("pass1", "pass2", "both"), help="cProfile this pass, print top 40")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from alerce.io import read_alerts
    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.steps import PipelineConfig

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-profile-"))
    atexit.register(shutil.rmtree, tmp, True)  # simulated nights and stores take GBs (--db keeps one)
    night = Path(args.night) if args.night else tmp / "night"
    if not args.night:
        simulate(night, n_objects=args.n_objects, seed=args.seed)
    batch = read_alerts(str(night), keep_stamps=False)
    batches = split_batches(batch, args.batch_size)
    db = Path(args.db) if args.db else tmp / "profile.db"
    if db.exists():
        db.unlink()
    url = f"sqlite:///{db}"
    store = Store(url)
    config = PipelineConfig(store_url=url, features=True)

    # warm-up (numba compilation, imports) on a throw-away store
    warm = Store(f"sqlite:///{tmp / 'warm.db'}")
    run_pass(batches[:1], warm, config)
    warm.close()

    results = {}
    for name in ("pass1", "pass2"):
        if args.profile in (name, "both"):
            prof = cProfile.Profile()
            prof.enable()
            results[name] = run_pass(batches, store, config)
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
            pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        else:
            results[name] = run_pass(batches, store, config)
    store.close()

    header = f"{'':<16}" + "  ".join(f"{s[:8]:>8}" for s in STAGES) + f"  {'total':>8}  {'alerts/s':>9}"
    print(f"{len(batches)} batches, {len(batch.alerts)} alerts, {args.batch_size} per batch; seconds per stage")
    print(header)
    for name in ("pass1", "pass2"):
        before = BEFORE[name]
        if before["alerts"]:
            print(_line(f"{name} before", before))
        print(_line(f"{name} now", results[name]))
        if before["alerts"]:
            tb = sum(before[s] for s in STAGES) / before["alerts"]
            tn = sum(results[name][s] for s in STAGES) / results[name]["alerts"]
            print(f"{'':<16}speed-up now / before: {tb / tn:.2f}x")
    if args.db:
        print(f"store: {db}")


if __name__ == "__main__":
    main()
