"""Benchmark: ``run_batch`` on a new night, with and without reusing the features of unchanged bands.

A survey of ``--n-objects`` objects over three nights is simulated; the first two nights are replayed
into a SQLite store (untimed), then the third night's alerts go through
:func:`alerce.streams.steps.run_batch` in lane batches of ``--batch-size`` alerts, one process, on two
copies of that store:

``baseline``  the feature step recomputes every band (reuse switched off in this process)
``reuse``     bands whose preprocessed points equal the stored ones keep their stored band-local features

The script prints alerts/s and seconds per stage for both, the reused (object, band) pairs and the
ratio. Both runs must write the same feature table (checked). Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/bench_feature_reuse.py [--n-objects 6000] [--batch-size 500]
        [--alerts 3000] [--seed 5]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from bench_pipeline_profile import split_batches


def run(batches, url: str, reuse: bool):
    """Stage seconds, alerts, reused bands and wall seconds of ``run_batch`` over ``batches``."""
    import alerce.features.extractor as extractor
    from alerce.streams import steps

    original = extractor._reusable
    if not reuse:
        extractor._reusable = lambda *_args: (None, None)
    try:
        config = steps.PipelineConfig(store_url=url, features=True)
        steps.run_batch(batches[0], config)  # warm-up (kernels, connections), not timed
        total, t0 = None, time.perf_counter()
        for batch in batches[1:]:
            summary = steps.run_batch(batch, config)
            if summary.errors:
                raise RuntimeError(summary.errors[0])
            total = summary if total is None else total + summary
        return total, time.perf_counter() - t0
    finally:
        extractor._reusable = original
        steps._STORES.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-objects", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--alerts", type=int, default=3000, help="alerts of the third night timed")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import pandas as pd

    from alerce.io import read_alerts
    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.replay import replay

    tmp = Path(tempfile.mkdtemp(prefix="bench_reuse_"))
    try:
        simulate(tmp / "sim", n_objects=args.n_objects, seed=args.seed, nights=3)
        nights = sorted(p for p in (tmp / "sim").iterdir() if p.is_dir())
        history = tmp / "history.db"
        replay([str(p) for p in nights[:2]], store=f"sqlite:///{history}", features=True)
        batch = read_alerts(str(nights[2]), keep_stamps=False)
        batches = split_batches(batch, args.batch_size)[:1 + args.alerts // args.batch_size]
        print(f"{args.n_objects} objects; third night {len(batch.alerts)} alerts, "
              f"{sum(len(b.alerts) for b in batches[1:])} timed in batches of {args.batch_size}")
        tables = {}
        rates = {}
        for name, reuse in (("baseline", False), ("reuse", True)):
            db = tmp / f"{name}.db"
            shutil.copy(history, db)
            total, wall = run(batches, f"sqlite:///{db}", reuse)
            rates[name] = total.alerts / wall
            stages = " ".join(f"{k} {v:.2f}" for k, v in total.stages.items())
            print(f"{name:<9} {rates[name]:6.0f} alerts/s; seconds per stage: {stages}; "
                  f"reused (object, band) pairs {total.reused_bands}")
            with Store(f"sqlite:///{db}") as store:
                tables[name] = store.read_table("feature").sort_values(["oid", "name", "fid"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(tables["baseline"], tables["reuse"])
        print(f"same feature table; speed-up reuse / baseline: {rates['reuse'] / rates['baseline']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
