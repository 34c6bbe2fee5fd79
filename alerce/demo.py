"""``make demo``: simulate one night, replay it on a LocalCluster, show what was stored."""

from __future__ import annotations

import importlib.util
import shutil
import time
from pathlib import Path

import pandas as pd

#: Tables shown at the end of the demo, with the columns worth a look.
_SHOWN = {
    "object": ["oid", "ndet", "firstmjd", "lastmjd", "meanra", "meandec", "corrected", "stellar",
               "g_r_mean_corr"],
    "magstat": ["oid", "fid", "ndet", "magmean", "magmin", "magmean_corr", "dmdt_first",
                "saturation_rate"],
    "detection": ["oid", "candid", "mjd", "fid", "magpsf", "magpsf_corr", "sigmapsf_corr_ext",
                  "corrected", "dubious", "has_stamp"],
    "non_detection": ["oid", "fid", "mjd", "diffmaglim"],
    "forced_photometry": ["oid", "pid", "mjd", "fid", "mag", "e_mag"],
    "feature": ["oid", "name", "fid", "value"],
    "probability": ["oid", "classifier_name", "class_name", "probability", "ranking"],
    "score": ["oid", "detector_name", "category", "score"],
}


def _stamp_classifier_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        from alerce.classifiers.stamp import load_default_model

        load_default_model()
    except Exception:  # noqa: BLE001 - the demo runs without it
        return False
    return True


def _lc_classifier_available() -> bool:
    from alerce.classifiers.lc.pipeline import DEFAULT_MODEL_DIR

    return (DEFAULT_MODEL_DIR / "model_card.json").is_file()


def run_demo(out: str = "demo_output", n_objects: int = 3000, seed: int = 42) -> int:
    """Simulate, replay and summarize; return a process exit code."""
    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.replay import replay

    out_dir = Path(out)
    alerts_dir = out_dir / "alerts"
    db_path = out_dir / "demo.db"
    t0 = time.perf_counter()
    if alerts_dir.exists():
        shutil.rmtree(alerts_dir)
    print(f"== simulating {n_objects} objects (seed {seed}) into {alerts_dir}")
    sim = simulate(alerts_dir, n_objects=n_objects, seed=seed, nights=1)
    print(sim)
    print(f"   simulated in {time.perf_counter() - t0:.1f} s")

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    stamps = _stamp_classifier_available()
    lc = _lc_classifier_available()
    print(f"== replaying into sqlite:///{db_path} on a LocalCluster "
          f"(stamp classifier: {stamps}, light-curve classifier: {lc})")
    summary = replay(str(alerts_dir), store=f"sqlite:///{db_path}", batch_size=1000,
                     stamp_classifier=stamps, lc_classifier=lc,
                     dead_letter=str(out_dir / "dead_letters"), progress=True)
    print(summary.format())
    with Store(f"sqlite:///{db_path}") as store:
        print("\n== rows per table")
        for table in store.tables:
            n = store.count(table)
            if n:
                print(f"   {table:<20} {n:>10,}")
        with pd.option_context("display.width", 160, "display.max_columns", 12):
            for table, cols in _SHOWN.items():
                if table not in store.tables or not store.count(table):
                    continue
                df = store.read_table(table)
                if table == "probability":
                    df = df[df["ranking"] == 1].sort_values(["classifier_name", "oid"])
                    df = df.groupby("classifier_name").head(3)
                print(f"\n== {table} (first rows)")
                print(df[[c for c in cols if c in df.columns]].head(12).to_string(index=False))
    print(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; store: {db_path}")
    return 0 if not summary.failed_batches else 1
