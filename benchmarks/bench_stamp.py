"""Benchmark of the stamp classifier on one core.

Prints
* batched throughput (alerts/s, ``torch.set_num_threads(1)``) of :func:`classify_alerts`, from
  the ``alerts`` + ``stamps`` frames (gzipped FITS bytes) to probability rows, and of the model
  alone (preprocessed inputs -> probabilities);
* the baseline measured in the same run: the same alerts classified one at a time, and the
  ratio batched / one-at-a-time;
* single-alert latency percentiles (p50/p95/p99) from a decoded packet (one-row frames holding
  the cutout bytes) to probabilities, with the model load amortized (loaded once, timed apart);
* the two fast paths against their straightforward versions, in the same process: the network
  with DFT convolutions vs the module's own forward (``predict_proba(fast=False)``), and the
  FITS header parser vs astropy on the same cutouts.

Real ZTF alerts from ../shared/data are used when present, simulated ones otherwise. The
solar-system rule is disabled (``ssdistnr = -999``) so every alert goes through the CNN.

Usage: ``python benchmarks/bench_stamp.py [--n 256] [--n-single 100]``
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def _alerts(n: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    root = Path(os.environ.get("ALERCE_SHARED_DATA",
                               Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    if (root / "ztf" / "alerts").exists():
        from alerce.io import read_alerts

        b = read_alerts(str(root / "ztf" / "alerts"))
        alerts = b.alerts.drop_duplicates("candid")
        alerts = alerts[alerts["candid"].isin(b.stamps["candid"])].reset_index(drop=True)
        reps = int(np.ceil(n / len(alerts)))
        alerts = pd.concat([alerts] * reps, ignore_index=True).iloc[:n].copy()
        original = alerts["candid"].to_numpy()
        alerts["candid"] = np.arange(len(alerts), dtype=np.int64)  # unique keys for the copies
        src = b.stamps.drop_duplicates("candid").set_index("candid")
        stamps = src.loc[original].reset_index(drop=True)
        stamps["candid"] = alerts["candid"].to_numpy()
        stamps["oid"] = alerts["oid"].to_numpy()
        return alerts, stamps, f"real ZTF alerts ({len(src)} unique, repeated)"
    from alerce.classifiers.stamp.simulation import simulate_alerts

    sim = simulate_alerts(int(np.ceil(n / 5)), 0, encode=True)
    return sim.alerts.iloc[:n], sim.stamps.iloc[:n], "simulated alerts"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256, help="alerts for the batched run")
    p.add_argument("--n-single", type=int, default=100, help="alerts classified one at a time")
    args = p.parse_args()
    torch.set_num_threads(1)
    from alerce.classifiers.stamp import classify_alerts, load_default_model, prepare_inputs

    t = time.perf_counter()
    model = load_default_model()
    load_s = time.perf_counter() - t
    alerts, stamps, what = _alerts(args.n)
    alerts = alerts.assign(ssdistnr=-999.0)
    print(f"input: {len(alerts)} {what}; model load {load_s * 1e3:.0f} ms (once per process)")

    classify_alerts(alerts.iloc[:8], stamps, model)  # warm-up
    t, cpu = time.perf_counter(), time.process_time()
    classify_alerts(alerts, stamps, model)
    batched = len(alerts) / (time.perf_counter() - t)
    batched_cpu = len(alerts) / (time.process_time() - cpu)  # immune to other processes' load

    inputs, _, _ = prepare_inputs(alerts, stamps)
    t = time.perf_counter()
    model.predict_proba(inputs)
    model_only = len(inputs) / (time.perf_counter() - t)

    t = time.perf_counter()
    model.predict_proba(inputs, fast=False)
    model_direct = len(inputs) / (time.perf_counter() - t)

    from alerce.io.stamps import _decode_with_astropy, _raw_fits, decode_stamp

    blobs = [b for c in ("science", "template", "difference") for b in stamps[c].iloc[:100]
             if b is not None and len(b)]
    t = time.perf_counter()
    for b in blobs:
        decode_stamp(b)
    fits_fast = len(blobs) / (time.perf_counter() - t)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in blobs:
            _decode_with_astropy(_raw_fits(b), np.float32)
    fits_astropy = len(blobs) / (time.perf_counter() - t)

    t = time.perf_counter()
    decoded = prepare_inputs(alerts, stamps)
    prep_rate = len(alerts) / (time.perf_counter() - t)
    del decoded

    single = alerts.iloc[: args.n_single]
    lat = []
    for i in range(len(single)):
        row = single.iloc[[i]]
        st = stamps[stamps["candid"] == row["candid"].iloc[0]]
        t = time.perf_counter()
        classify_alerts(row, st, model)
        lat.append(time.perf_counter() - t)
    lat = np.asarray(lat)
    one_at_a_time = len(lat) / lat.sum()
    p50, p95, p99 = np.percentile(lat * 1e3, [50, 95, 99])
    print(f"batched end-to-end (decode + features + CNN, 1 thread): {batched:8.1f} alerts/s "
          f"(wall clock); {batched_cpu:.1f} alerts per CPU-second")
    print(f"  of which preprocessing alone (FITS decode, crop, features): {prep_rate:8.1f} alerts/s")
    print(f"  of which CNN alone (batched, 4 rotations):               {model_only:8.1f} alerts/s")
    print(f"  CNN with the module's direct convolutions (old path):   {model_direct:8.1f} alerts/s"
          f"  -> DFT path {model_only / model_direct:.2f}x")
    print(f"FITS cutouts decoded, header parser / astropy:   {fits_fast:8.0f} / {fits_astropy:6.0f}"
          f" cutouts/s ({fits_fast / fits_astropy:.1f}x)")
    print(f"baseline one-at-a-time end-to-end:                      {one_at_a_time:8.1f} alerts/s")
    print(f"ratio batched / one-at-a-time:                          {batched / one_at_a_time:8.2f}x")
    print(f"single-alert latency (bytes -> probabilities): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
          f"p99 {p99:.1f} ms (goal p99 < 1000 ms)")
    print(f"goal >= 200 alerts/s/core batched: {'met' if batched >= 200 else 'NOT met'} (wall), "
          f"{'met' if batched_cpu >= 200 else 'NOT met'} (CPU time)")


if __name__ == "__main__":
    main()
