"""Benchmark: our Turbo-FATS statistics vs the ``light-curve`` package (GPL; benchmark-only dependency).

Runs single-threaded (NUMBA_NUM_THREADS=1, light-curve ``n_jobs=1``) on the ZTF DR5 g-band light
curves of one CCD quadrant (``../shared/data/lightcurves/ztf_dr5_quadrant``), keeping
``catflags == 0`` epochs and curves with at least 6 of them. For the features both libraries compute
it prints the agreement (after converting the documented definitional differences) and the time
ratio light-curve / ours on the common feature subset, plus the time of our full families.

Usage: ``python benchmarks/bench_features_stats.py [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ["NUMBA_NUM_THREADS"] = "1"  # must precede the numba import

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerce.features.base import PackedLightCurves  # noqa: E402
from alerce.features.drw import GPDRWFamily  # noqa: E402
from alerce.features.iqr import IQRFamily  # noqa: E402
from alerce.features.mhps import MHPSFamily  # noqa: E402
from alerce.features.turbofats import TurboFatsFamily  # noqa: E402

DATA = Path(os.environ.get("ALERCE_SHARED_DATA", ROOT.parent / "shared" / "data"))
QUADRANT = DATA / "lightcurves" / "ztf_dr5_quadrant" / "ztf_000250_zg_c01_q1_dr5.parquet"

#: our feature -> (light-curve feature factory name, kwargs, output index)
COMMON = {
    "Mean": ("Mean", {}, 0),
    "MedianAbsDev": ("MedianAbsoluteDeviation", {}, 0),
    "MaxSlope": ("MaximumSlope", {}, 0),
    "LinearTrend": ("LinearTrend", {}, 0),
    "MedianBRP": ("MedianBufferRangePercentage", {"quantile": 0.2}, 0),
    "Q31": ("InterPercentileRange", {"quantile": 0.25}, 0),
    "StetsonK": ("StetsonK", {}, 0),
    "PercentAmplitude": ("PercentAmplitude", {}, 0),
    "SmallKurtosis": ("Kurtosis", {}, 0),
    "Skew": ("Skew", {}, 0),
    "Std": ("StandardDeviation", {}, 0),
    "ExcessVar": ("ExcessVariance", {}, 0),
    "AndersonDarling": ("AndersonDarlingNormal", {}, 0),
    "Amplitude": ("Amplitude", {}, 0),
}


def load_curves(min_points: int = 6) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    df = pd.read_parquet(QUADRANT, columns=["hmjd", "mag", "magerr", "catflags"])
    curves = []
    for t, m, e, f in zip(df["hmjd"], df["mag"], df["magerr"], df["catflags"], strict=True):
        good = np.asarray(f) == 0
        t = np.asarray(t, dtype=np.float64)[good]
        if len(t) < min_points:
            continue
        order = np.argsort(t, kind="stable")
        curves.append((t[order], np.asarray(m, dtype=np.float64)[good][order],
                       np.asarray(e, dtype=np.float64)[good][order]))
    return curves


def pack_single_band(curves) -> PackedLightCurves:
    counts = np.array([len(c[0]) for c in curves], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    offsets = np.stack([starts[:-1], starts[1:], starts[1:]], axis=1)
    time_, mag, err = (np.concatenate([c[k] for c in curves]) for k in range(3))
    nan = np.full(len(time_), np.nan)
    return PackedLightCurves(
        oids=np.arange(len(curves)).astype(object), bands=(1, 2), time=time_, mag=mag, err=err,
        mag_raw=mag, err_raw=err, isdiffpos=np.ones(len(time_)), rb=nan, ra=nan, dec=nan,
        band_offsets=offsets, nd_time=np.empty(0), nd_diffmaglim=np.empty(0),
        nd_band_offsets=np.zeros_like(offsets))


def to_light_curve_definitions(ours: pd.DataFrame, n: np.ndarray) -> pd.DataFrame:
    """Convert our (ALeRCE) definitions to light-curve's where they differ only by a factor."""
    out = ours.copy()
    out["Std"] = ours["Std"] * np.sqrt(n / (n - 1))                      # ddof 0 -> 1
    out["Skew"] = ours["Skew"] * np.sqrt(n * (n - 1)) / (n - 2)          # g1 -> G1
    c2 = 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))
    out["SmallKurtosis"] = (ours["SmallKurtosis"] + c2) * ((n - 1) / n) ** 2 - c2  # σ ddof 0 -> 1
    out["ExcessVar"] = ours["ExcessVar"] + ours["Std"] ** 2 / (n - 1) / ours["Mean"] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        a2 = 0.3 - np.log(1.0 / ours["AndersonDarling"] - 1.0) / 10.0  # undo the logistic
    out["AndersonDarling"] = a2 * (1 + 4 / n - 25 / n ** 2)
    return out


def main() -> None:
    import light_curve as lcpkg

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    curves = load_curves()
    n = np.array([len(c[0]) for c in curves], dtype=float)
    print(f"{len(curves)} light curves with >= 6 good epochs, {int(n.sum())} points, "
          f"median {np.median(n):.0f}, max {n.max():.0f}")
    t0 = time.perf_counter()
    packed = pack_single_band(curves)
    print(f"packing: {time.perf_counter() - t0:.3f} s")

    names = list(COMMON)
    ours_fam = TurboFatsFamily(features=names, bands=(1,))
    ext = lcpkg.Extractor(*[getattr(lcpkg, f)(**kw) for f, kw, _ in COMMON.values()])
    lc_index = []
    pos = 0
    for f, kw, k in COMMON.values():
        lc_index.append(pos + k)
        pos += len(getattr(lcpkg, f)(**kw).names)

    ours_fam.compute(packed, {})  # compile / load the numba cache outside the timing
    ext.many(curves[:10], n_jobs=1, sorted=True, check=False)

    t_ours, t_lc = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        ours = ours_fam.compute(packed, {})
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs = ext.many(curves, n_jobs=1, sorted=True, check=False, fill_value=np.nan)
        t_lc.append(time.perf_counter() - t0)
    ours_df = pd.DataFrame(ours, columns=names)
    conv = to_light_curve_definitions(ours_df, n)
    medians = np.array([np.median(c[1]) for c in curves])
    conv["PercentAmplitude"] = ours_df["PercentAmplitude"] * medians
    theirs_df = pd.DataFrame(theirs[:, lc_index], columns=names)

    print("\nfeature             agree(rtol 1e-6)   max |rel diff|   note")
    notes = {
        "Amplitude": "different definition (ALeRCE: medians of top/bottom 5%; light-curve: (max-min)/2)",
        "AndersonDarling": "logistic undone, small-sample factor applied; compared where value < 0.999",
        "Std": "ddof 0 vs 1 converted", "Skew": "biased g1 vs G1 converted",
        "SmallKurtosis": "σ ddof 0 vs 1 converted", "ExcessVar": "σ² ddof 0 vs 1 converted",
        "PercentAmplitude": "ALeRCE divides by the median", "Q31": "light-curve's own quantile",
        "MedianBRP": "light-curve quantile=0.2",
    }
    for name in names:
        a = conv[name].to_numpy()
        b = theirs_df[name].to_numpy()
        ok = np.isfinite(a) & np.isfinite(b)
        if name == "AndersonDarling":
            ok &= ours_df[name].to_numpy() < 0.999
        rel = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12)
        agree = np.mean(rel <= 1e-6) if ok.any() else float("nan")
        print(f"{name:18s}  {agree:8.4f} ({ok.sum():5d})   {rel.max() if ok.any() else np.nan:12.3e}   "
              f"{notes.get(name, '')}")

    best_ours, best_lc = min(t_ours), min(t_lc)
    print(f"\ncommon {len(names)} features, single thread: ours {best_ours * 1e3:.1f} ms, "
          f"light-curve {best_lc * 1e3:.1f} ms, ratio light-curve/ours = {best_lc / best_ours:.2f}")

    full = [TurboFatsFamily(bands=(1,)), GPDRWFamily(bands=(1,)), MHPSFamily(bands=(1,)),
            IQRFamily(bands=(1,))]
    for fam in full:
        fam.compute(packed, {})
        t0 = time.perf_counter()
        fam.compute(packed, {})
        dt = time.perf_counter() - t0
        print(f"{type(fam).__name__:16s} all {len(fam.names):2d} features: {dt * 1e3:8.1f} ms "
              f"({dt / len(curves) * 1e6:.1f} µs per light curve)")


if __name__ == "__main__":
    main()
