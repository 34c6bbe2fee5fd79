"""Benchmark: detections/s of ``alerce.correction.correct_lightcurves``.

The 10 golden ALeRCE objects (1,381 detections, 1,200 non-detections) are replicated with new oids
to build a large batch. The baseline, run in the same process on a slice of that batch, is a
straightforward per-band pandas ``groupby().apply`` implementation of the same correction, dubious
flag, magstats and dm/dt (the style of ALeRCE's ``lc_correction``). Both outputs are compared on the
slice before timing is reported.

Usage::

    python benchmarks/bench_correction.py [--copies 400] [--baseline-copies 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alerce.correction import correct_lightcurves

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "golden" / "alerce_lc_correction"


def load_golden() -> tuple[pd.DataFrame, pd.DataFrame]:
    d = pd.read_parquet(GOLDEN / "10_objects_detections.parquet").rename(columns={"objectId": "oid"})
    d["mjd"] = d["jd"] - 2400000.5
    d["mjdendref"] = d["jdendref"] - 2400000.5
    d["isdiffpos"] = np.where(d["isdiffpos"].isin(["t", "1"]), 1, -1).astype(np.int8)
    d["has_stamp"] = d["parent_candid"] == 0
    n = pd.read_parquet(GOLDEN / "10_objects_non_detections.parquet").rename(columns={"objectId": "oid"})
    n["mjd"] = n["jd"] - 2400000.5
    return d, n


def replicate(frame: pd.DataFrame, copies: int) -> pd.DataFrame:
    """``copies`` copies of ``frame`` with oids suffixed by the copy number (candids stay unique per oid)."""
    reps = np.repeat(np.arange(copies), len(frame))
    out = pd.concat([frame] * copies, ignore_index=True)
    out["oid"] = out["oid"].astype(str) + "_" + pd.Series(reps).astype(str)
    return out


# ------------------------------------------------------------------------- baseline (per band)
def _baseline_band(group: pd.DataFrame, nd_groups: dict) -> pd.Series:
    g = group.sort_values("mjd")
    corrected = g["distnr"] < 1.4
    f_ref = 10 ** (-0.4 * g["magnr"].astype(float))
    f_diff = 10 ** (-0.4 * g["magpsf"].astype(float))
    f_tot = f_ref + g["isdiffpos"] * f_diff
    mag_corr = (-2.5 * np.log10(f_tot.where(f_tot > 0))).where(f_tot > 0, 100.0)
    mag_corr = mag_corr.where(corrected & (g["magnr"] >= 0) & (g["magpsf"] >= 0))
    first_corr = corrected.loc[g["candid"].idxmin()]
    dubious = (~corrected & (g["isdiffpos"] == -1)) | (corrected != first_corr)
    mag = g["magpsf"].astype(float)
    row = {
        "corrected": corrected.iloc[0], "ndet": len(g), "ndubious": int(dubious.sum()),
        "magmean": mag.mean(), "magmedian": mag.median(), "magmax": mag.max(), "magmin": mag.min(),
        "magsigma": mag.std(), "magfirst": mag.iloc[0], "maglast": mag.iloc[-1],
        "magmean_corr": mag_corr.mean(), "magmedian_corr": mag_corr.median(), "magmax_corr": mag_corr.max(),
        "magmin_corr": mag_corr.min(), "magsigma_corr": mag_corr.std(),
        "magfirst_corr": mag_corr.iloc[0], "maglast_corr": mag_corr.iloc[-1],
        "firstmjd": g["mjd"].iloc[0], "lastmjd": g["mjd"].iloc[-1],
    }
    nd = nd_groups.get(group.name)
    row["dmdt_first"] = np.nan
    if nd is not None:
        dt = g["mjd"].iloc[0] - nd["mjd"]
        rate = (mag.iloc[0] + g["sigmapsf"].iloc[0] - nd["diffmaglim"]) / dt
        rate = rate[dt > 0.5]
        if len(rate):
            row["dmdt_first"] = rate.min()
    return pd.Series(row)


def baseline(dets: pd.DataFrame, nds: pd.DataFrame) -> pd.DataFrame:
    d = dets.sort_values("has_stamp", ascending=False).drop_duplicates(["oid", "candid"])
    nd = nds.drop_duplicates(["oid", "fid", "mjd"])
    nd_groups = {k: v for k, v in nd.groupby(["oid", "fid"])}
    return d.groupby(["oid", "fid"]).apply(_baseline_band, nd_groups, include_groups=False)


def timed(fn, *args, repeat: int = 1):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=400, help="replicas of the 10 golden objects")
    parser.add_argument("--baseline-copies", type=int, default=40, help="replicas for the baseline")
    args = parser.parse_args()

    dets, nds = load_golden()
    big_d, big_n = replicate(dets, args.copies), replicate(nds, args.copies)
    small_d, small_n = replicate(dets, args.baseline_copies), replicate(nds, args.baseline_copies)

    t_base, base = timed(baseline, small_d, small_n)
    t_small, ours_small = timed(correct_lightcurves, small_d, small_n, repeat=3)
    ours = ours_small.magstats.set_index(["oid", "fid"]).loc[base.index]
    for col in ("magmean", "magsigma", "magmedian_corr", "magfirst_corr", "dmdt_first", "ndubious"):
        np.testing.assert_allclose(ours[col].to_numpy(float), base[col].to_numpy(float), atol=1e-5,
                                   err_msg=col)
    t_big, _ = timed(correct_lightcurves, big_d, big_n)

    n_small, n_big = len(small_d), len(big_d)
    rate_base = n_small / t_base
    rate_small = n_small / t_small
    rate_big = n_big / t_big
    print(f"baseline groupby-apply : {n_small:>9,d} detections in {t_base:7.3f} s = {rate_base:12,.0f} det/s")
    print(f"correct_lightcurves    : {n_small:>9,d} detections in {t_small:7.3f} s = {rate_small:12,.0f} det/s"
          f"  (ratio {rate_small / rate_base:6.1f}x)")
    print(f"correct_lightcurves    : {n_big:>9,d} detections in {t_big:7.3f} s = {rate_big:12,.0f} det/s"
          f"  (ratio vs baseline {rate_big / rate_base:6.1f}x)")


if __name__ == "__main__":
    main()
