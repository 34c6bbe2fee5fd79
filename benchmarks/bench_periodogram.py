"""Benchmark: ALeRCE period features, ours (numba) vs P4J (ALeRCE's production package).

Same grid (float32 1e-3..20 step 1e-3, 10 fine-tuned maxima with 1e-4 grids) and same light
curves in the same process, single thread. Prints per-object times and the ratio, then the
scaling with light-curve length (20..2000 points).

Times are process CPU times (``time.process_time``), robust to other load on the machine.
Run: ``python benchmarks/bench_periodogram.py`` (sets NUMBA_NUM_THREADS=1 itself).
Needs ``P4J`` (``pip install p4j``) and ../shared/data for the real curves.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from alerce.features.base import PackedLightCurves  # noqa: E402
from alerce.features.folded import FoldedKimFamily  # noqa: E402
from alerce.features.harmonics import HarmonicsFamily  # noqa: E402
from alerce.features.periodogram import PeriodFamily  # noqa: E402

SHARED = Path(os.environ.get("ALERCE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pack(objects: list[dict], bands=(1, 2)) -> PackedLightCurves:
    ts, ms, es = [], [], []
    offsets = np.zeros((len(objects), len(bands) + 1), dtype=np.int64)
    pos = 0
    for i, obj in enumerate(objects):
        for b, band in enumerate(bands):
            offsets[i, b] = pos
            sel = np.flatnonzero(obj["fid"] == band)
            sel = sel[np.argsort(obj["t"][sel], kind="stable")]
            ts.append(obj["t"][sel]), ms.append(obj["m"][sel]), es.append(obj["e"][sel])
            pos += sel.size
        offsets[i, -1] = pos
    t, m, e = np.concatenate(ts), np.concatenate(ms), np.concatenate(es)
    z = np.zeros_like(t)
    n = len(objects)
    return PackedLightCurves(
        np.arange(n).astype(object), tuple(bands), t, m, e, m, e, z + 1, z + 1, z, z, offsets,
        np.empty(0), np.empty(0), np.zeros((n, len(bands) + 1), dtype=np.int64),
    )


def ztf_curves() -> list[dict]:
    path = SHARED / "lightcurves" / "alerce_lc_classifier_history" / "periodic_light_curves_25obj.parquet"
    d = pd.read_parquet(path).reset_index()
    d = d[(d["rb"] >= 0.55) & (d["sigmapsf_corr"] > 0) & (d["sigmapsf_corr"] < 1)]
    d = d.dropna(subset=["magpsf_corr"]).drop_duplicates(["oid", "mjd"])
    return [
        {"t": g["mjd"].to_numpy(float), "m": g["magpsf_corr"].to_numpy(float),
         "e": g["sigmapsf_corr"].to_numpy(float), "fid": g["fid"].to_numpy(float)}
        for _, g in d.groupby("oid")
    ]


def synthetic(rng, n_points: int) -> dict:
    t = 58300 + np.sort(rng.uniform(0, 900, n_points))
    fid = np.where(rng.random(n_points) < 0.5, 1.0, 2.0)
    fid[:6], fid[6:12] = 1.0, 2.0
    e = rng.uniform(0.01, 0.1, n_points)
    m = 17 + 0.3 * np.sin(2 * np.pi * t / 0.537) + rng.normal(0, e)
    return {"t": t, "m": m, "e": e, "fid": fid}


def p4j_period(obj: dict, p4j) -> float:
    keep = np.zeros(obj["t"].size, bool)
    for f in np.unique(obj["fid"]):
        if (obj["fid"] == f).sum() > 5:
            keep |= obj["fid"] == f
    order = np.argsort(obj["t"][keep])
    per = p4j.MultiBandPeriodogram(method="MHAOV")
    per.set_data(*(obj[k][keep][order] for k in ("t", "m", "e", "fid")))
    per.frequency_grid_evaluation(fmin=1e-3, fmax=20.0, fresolution=1e-3)
    per.finetune_best_frequencies(n_local_optima=10, fresolution=1e-4)
    return 1.0 / per.get_best_frequencies()[0][0]


def time_ours(objs: list[dict], repeat: int = 3) -> tuple[float, float]:
    """(period family, all three F3 families) seconds per object, best of ``repeat``."""
    lc = pack(objs)
    fams = (PeriodFamily(), FoldedKimFamily(), HarmonicsFamily())
    best_p = best_all = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        out = fams[0].compute(lc, {})
        t1 = time.process_time()
        ctx = {"Multiband_period": out[:, 0]}
        fams[1].compute(lc, ctx)
        fams[2].compute(lc, ctx)
        t2 = time.process_time()
        best_p = min(best_p, (t1 - t0) / len(objs))
        best_all = min(best_all, (t2 - t0) / len(objs))
    return best_p, best_all


def time_p4j(objs: list[dict], p4j) -> float:
    t0 = time.process_time()
    for obj in objs:
        p4j_period(obj, p4j)
    return (time.process_time() - t0) / len(objs)


def main() -> None:
    try:
        import P4J as p4j
    except ImportError:
        p4j = None
        print("P4J not installed: only our timings are printed (pip install p4j)")
    rng = np.random.default_rng(0)
    # warm-up (numba compilation / cache load)
    time_ours([synthetic(rng, 30)], repeat=1)

    print(f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}")
    if (SHARED / "lightcurves").exists():
        objs = ztf_curves()
        npts = np.mean([o["t"].size for o in objs])
        ours_p, ours_all = time_ours(objs)
        line = (f"ZTF periodic curves ({len(objs)} objects, {npts:.0f} points mean): ours "
                f"{ours_p * 1e3:.2f} ms/object (period+power rates), {ours_all * 1e3:.2f} ms/object "
                "(+ folded Kim + harmonics)")
        if p4j is not None:
            ref = time_p4j(objs, p4j)
            line += f"; P4J {ref * 1e3:.1f} ms/object; ratio P4J/ours = {ref / ours_p:.0f}x"
        print(line)
    else:
        print(f"shared data not found at {SHARED}: skipping the real curves")

    print("scaling with light-curve length (two bands, synthetic):")
    print(f"{'points':>7} {'ours ms':>9} {'all F3 ms':>10} {'P4J ms':>9} {'ratio':>7}")
    for n_points in (20, 50, 100, 200, 500, 1000, 2000):
        n_obj = max(2, 4000 // n_points)
        objs = [synthetic(rng, n_points) for _ in range(n_obj)]
        ours_p, ours_all = time_ours(objs, repeat=2)
        ref_txt = ratio_txt = "-"
        if p4j is not None:
            ref = time_p4j(objs[: max(1, 400 // n_points)], p4j)
            ref_txt, ratio_txt = f"{ref * 1e3:.1f}", f"{ref / ours_p:.0f}x"
        print(f"{n_points:>7} {ours_p * 1e3:>9.2f} {ours_all * 1e3:>10.2f} {ref_txt:>9} {ratio_txt:>7}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
