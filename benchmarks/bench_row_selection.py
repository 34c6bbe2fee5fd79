"""Benchmark: the pipeline's row selection with integer key codes against pandas sorts.

``process_alerts`` keeps one detection per ``(oid, candid)`` out of the stored rows plus every alert's
30-day history (the alert's own row first, then the earliest reporting alert). It does so with
``alerce.codes.first_rows``; the baseline, run in the same process on the same frame, is what the
pipeline did before: ``sort_values(kind="mergesort")`` of the whole frame, then ``drop_duplicates``.
Both must keep the same rows. Frames are shaped like live lane batches: ``--alerts`` alerts of as many
objects, each with ``--history`` stored detections that its alert repeats.

Usage::

    python benchmarks/bench_row_selection.py [--alerts 20 300] [--history 80] [--repeat 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from alerce.codes import first_rows

KEYS = ["oid", "candid"]
BY = ["has_stamp", "parent_candid"]
ASCENDING = [True, True, False, True]


def lane_batch_detections(n_alerts: int, history: int, seed: int = 0) -> pd.DataFrame:
    """Stored detections plus each alert's own row and its repeated history, shuffled."""
    rng = np.random.default_rng(seed)
    oids = [f"ZTF24{i:07d}" for i in range(n_alerts)]
    rows = []
    for i, oid in enumerate(oids):
        candids = 10**12 + i * 1000 + np.arange(history + 1)
        parent = candids[-1]
        rows.append(pd.DataFrame({"oid": oid, "candid": candids, "has_stamp": False,
                                  "parent_candid": pd.array([None] * (history + 1), dtype="Int64")}))  # stored
        rows.append(pd.DataFrame({"oid": oid, "candid": candids, "has_stamp": candids == parent,
                                  "parent_candid": pd.array(np.full(history + 1, parent), dtype="Int64")}))
    frame = pd.concat(rows, ignore_index=True)
    frame["oid"] = frame["oid"].astype("str")
    frame["mjd"] = rng.random(len(frame))
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def with_codes(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.take(first_rows(frame, KEYS, BY, ascending=ASCENDING, nulls="first")).reset_index(drop=True)


def with_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    ordered = frame.sort_values([*KEYS, *BY], ascending=ASCENDING, kind="mergesort", na_position="first")
    return ordered.drop_duplicates(KEYS, keep="first").reset_index(drop=True)


def best_of(fn, frame: pd.DataFrame, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, nargs="+", default=[20, 300])
    parser.add_argument("--history", type=int, default=80)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    for n in args.alerts:
        frame = lane_batch_detections(n, args.history)
        pd.testing.assert_frame_equal(with_codes(frame), with_pandas(frame))
        ours, theirs = best_of(with_codes, frame, args.repeat), best_of(with_pandas, frame, args.repeat)
        print(f"{n:5d} alerts, {len(frame):7,d} rows: pandas sort + drop_duplicates {theirs * 1e3:7.2f} ms, "
              f"first_rows {ours * 1e3:7.2f} ms, ratio {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
