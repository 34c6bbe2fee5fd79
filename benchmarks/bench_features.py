"""Feature extraction benchmark: ms per object on one core, with a same-process baseline.

Usage::

    python benchmarks/bench_features.py            # ~3-5 minutes on one core
    python benchmarks/bench_features.py --quick    # smaller samples

Prints

1. JIT warm-up (compile or cache load) time of the full default extractor;
2. ms/object of the full default set (178 features) on realistic light curves: ZTF DR5 g-band
   light curves of one CCD quadrant (catflags == 0, >= 6 points) and BTS transients (g and r);
3. the per-family breakdown;
4. the baseline ratio: a plain per-object numpy/scipy implementation (pandas groupby + numpy
   statistics + ``scipy.optimize.curve_fit`` with ALeRCE's SPM settings) of the SN, SPM and colour
   families vs our numba families on the same objects;
5. scaling tables: time per object vs light-curve length (20 .. 2,000 points, synthetic g + r)
   and vs number of objects per call.

Everything runs with ``NUMBA_NUM_THREADS=1`` and ``numba.set_num_threads(1)``.
"""

from __future__ import annotations

import os

os.environ["NUMBA_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from alerce.features.colors import ColorFamily  # noqa: E402
from alerce.features.extractor import Extractor, default_extractor  # noqa: E402
from alerce.features.pack import pack_lightcurves  # noqa: E402
from alerce.features.sn import SNDetectionFamily  # noqa: E402
from alerce.features.spm import SPMFamily  # noqa: E402

numba.set_num_threads(1)
warnings.simplefilter("ignore")

DATA = Path(os.environ.get("ALERCE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_dr5(n_objects: int) -> pd.DataFrame:
    """ZTF DR5 g-band light curves (one quadrant) as a detections frame."""
    q = pd.read_parquet(DATA / "lightcurves" / "ztf_dr5_quadrant" / "ztf_000250_zg_c01_q1_dr5.parquet")
    n = q["hmjd"].map(len).to_numpy()
    oid = np.repeat(q["objectid"].astype(str).to_numpy(), n)
    det = pd.DataFrame({
        "oid": oid,
        "mjd": np.concatenate(q["hmjd"].to_numpy()).astype(float),
        "magpsf": np.concatenate(q["mag"].to_numpy()).astype(float),
        "sigmapsf": np.concatenate(q["magerr"].to_numpy()).astype(float),
        "catflags": np.concatenate(q["catflags"].to_numpy()),
        "ra": np.repeat(q["objra"].to_numpy(float), n),
        "dec": np.repeat(q["objdec"].to_numpy(float), n),
    })
    det = det[det["catflags"] == 0].drop(columns="catflags")
    det["fid"], det["isdiffpos"], det["rb"] = 1, 1.0, 1.0
    counts = det.groupby("oid").size()
    keep = counts[counts >= 6].index[:n_objects]
    return det[det["oid"].isin(keep)].reset_index(drop=True)


def load_bts(n_objects: int) -> pd.DataFrame:
    """BTS transient light curves (g, r) as a detections frame."""
    b = pd.read_parquet(DATA / "lightcurves" / "bts_2710_labeled" / "bts_antares_lightcurves_2710.parquet")
    oids = np.sort(b["ZTFID"].unique())[:n_objects]
    b = b[b["ZTFID"].isin(oids)]
    return pd.DataFrame({
        "oid": b["ZTFID"].to_numpy(), "mjd": b["mjd"].to_numpy(),
        "fid": np.where(b["band"].to_numpy() == "g", 1, 2),
        "magpsf": b["mag"].to_numpy(), "sigmapsf": b["magerr"].to_numpy(),
        "isdiffpos": 1.0, "rb": 1.0, "ra": 150.0, "dec": 20.0,
    })


def synthetic(n_objects: int, n_points: int, seed: int = 0) -> pd.DataFrame:
    """Periodic variables with ZTF-like irregular cadence, half the points in g, half in r."""
    rng = np.random.default_rng(seed)
    k = n_objects * n_points
    oid = np.repeat(np.arange(n_objects), n_points)
    t = 58000 + np.sort(rng.uniform(0, 1000, (n_objects, n_points)), axis=1).ravel()
    period = np.repeat(rng.uniform(0.2, 50, n_objects), n_points)
    mag = 18 + 0.5 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.05, k)
    return pd.DataFrame({"oid": [f"s{i:06d}" for i in oid], "mjd": t,
                         "fid": rng.choice([1, 2], k), "magpsf": mag, "sigmapsf": 0.05,
                         "isdiffpos": 1.0, "rb": 1.0, "ra": 10.0, "dec": 5.0})


def timed(fn, repeat: int = 1) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ------------------------------------------------------------------ baseline (per object, plain)


def _baseline_spm(t, mag, err):
    from scipy.optimize import curve_fit

    def model(t, A, t0, gamma, beta, trise, tfall):
        t1 = t0 + gamma
        with np.errstate(over="ignore", invalid="ignore"):
            s = 1 / (1 + np.exp(-(t - t1) / 3))
            return A / (1 + np.exp(-(t - t0) / trise)) * (
                (1 - beta) * np.exp(-(t - t1) / tfall) * s + (1 - beta * (t - t0) / gamma) * (1 - s))

    t = t - t[0]
    flux = 10 ** (-(mag + 48.6) / 2.5 + 26)
    eflux = 10 ** (-(mag - err + 48.6) / 2.5 + 26) - flux
    fmax = flux.max()
    lo, hi = [fmax / 3, -50, 1, 0, 1, 1], [3 * fmax, 50, 100, 1, 100, 100]
    a0 = 3 * fmax
    x0 = np.clip([a0, -5, np.clip(t[-1], 1, 100), 0.5, np.clip(t[np.argmax(flux)] / 2, 1, 100), 40],
                 lo, hi)
    for ftol in (a0 / 20, a0 / 3):
        try:
            p, _ = curve_fit(model, t, flux, p0=x0, bounds=(lo, hi), ftol=ftol)
            break
        except (RuntimeError, ValueError):
            p = np.full(6, np.nan)
    chi = np.sum((model(t, *p) - flux) ** 2 / (eflux + 0.01) ** 2) / (len(t) - 6) if len(t) > 6 else np.nan
    return [*p, chi]


def baseline(det: pd.DataFrame) -> pd.DataFrame:
    """Per-object pandas/numpy/scipy SN + SPM + colours (what a straightforward port does)."""
    rows = {}
    for oid, obj in det.groupby("oid", sort=True):
        row = {}
        means, mins = {}, {}
        for fid, g in obj.groupby("fid"):
            g = g.sort_values("mjd")
            mag = g["magpsf"].to_numpy()
            row.update({f"delta_mag_fid_{fid}": np.ptp(mag), f"first_mag_{fid}": mag[0],
                        f"mean_mag_{fid}": mag.mean(), f"min_mag_{fid}": mag.min(),
                        f"n_det_{fid}": len(mag),
                        f"n_pos_{fid}": int((g["isdiffpos"] > 0).sum())})
            means[fid], mins[fid] = mag.mean(), mag.min()
            for k, v in zip(("A", "t0", "gamma", "beta", "tau_rise", "tau_fall", "chi"),
                            _baseline_spm(g["mjd"].to_numpy(), mag, g["sigmapsf"].to_numpy())):
                row[f"SPM_{k}_{fid}"] = v
        if 1 in means and 2 in means:
            row["g-r_mean"] = means[1] - means[2]
            row["g-r_max"] = mins[1] - mins[2]
        rows[oid] = row
    return pd.DataFrame.from_dict(rows, orient="index")


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    args = parser.parse_args()
    n_real = 150 if args.quick else 400
    n_base = 40 if args.quick else 100

    ex = default_extractor()
    print(f"extractor: {len(ex.families)} families, {len(ex.names)} features; numba threads = "
          f"{numba.get_num_threads()}")
    warm = synthetic(3, 30)
    t_warm = timed(lambda: ex.compute(pack_lightcurves(warm)))
    print(f"warm-up (JIT compile or cache load): {t_warm:.1f} s\n")

    print("## Full default set on real light curves (one core)")
    print("| data | objects | points/object | pack ms/obj | extract ms/obj |")
    print("|---|---|---|---|---|")
    real = {"ZTF DR5 quadrant (g)": load_dr5(n_real), "BTS transients (g, r)": load_bts(n_real)}
    packed = {}
    for name, det in real.items():
        t_pack = timed(lambda det=det: pack_lightcurves(det))
        lc = pack_lightcurves(det)
        packed[name] = lc
        t_ext = timed(lambda lc=lc: ex.compute(lc))
        print(f"| {name} | {len(lc)} | {len(lc.time) / len(lc):.1f} | "
              f"{1e3 * t_pack / len(lc):.3f} | {1e3 * t_ext / len(lc):.2f} |")

    print("\n## Per family (ms/object)")
    print("| family | " + " | ".join(real) + " |")
    print("|---|" + "---|" * len(real))
    ctx = {name: ex.compute(lc) for name, lc in packed.items()}
    for fam in ex.families:
        cells = []
        for name, lc in packed.items():
            c = {k: np.ascontiguousarray(ctx[name][k].to_numpy()) for k in fam.depends}
            cells.append(f"{1e3 * timed(lambda fam=fam, lc=lc, c=c: fam.compute(lc, c), repeat=2) / len(lc):.3f}")
        print(f"| {type(fam).__name__} | " + " | ".join(cells) + " |")

    print("\n## Baseline: per-object numpy/scipy SN + SPM + colours vs our numba families")
    det = load_bts(n_base)
    ours = Extractor([SNDetectionFamily(), SPMFamily(), ColorFamily()])
    lc = pack_lightcurves(det)
    ours.compute(lc)
    t_ours = timed(lambda: ours.compute(pack_lightcurves(det)))
    t_base = timed(lambda: baseline(det))
    print(f"objects: {len(lc)}; baseline {1e3 * t_base / len(lc):.2f} ms/obj; ours (pack included) "
          f"{1e3 * t_ours / len(lc):.3f} ms/obj; speed-up x{t_base / t_ours:.1f}")

    print("\n## Scaling vs light-curve length (full set, synthetic g + r, ms/object)")
    print("| points/object | objects | ms/object |")
    print("|---|---|---|")
    for n_points in (20, 50, 100, 200, 500, 1000, 2000):
        n_obj = 100 if n_points <= 200 else (20 if n_points <= 500 else 5)
        if args.quick:
            n_obj = max(3, n_obj // 4)
        lc = pack_lightcurves(synthetic(n_obj, n_points, seed=n_points))
        print(f"| {n_points} | {n_obj} | {1e3 * timed(lambda lc=lc: ex.compute(lc)) / n_obj:.2f} |")

    print("\n## Scaling vs objects per call (full set, 50 points/object)")
    print("| objects/call | ms/object |")
    print("|---|---|")
    for n_obj in (1, 10, 100, 1000):
        if args.quick and n_obj > 100:
            continue
        det = synthetic(n_obj, 50, seed=7)
        t = timed(lambda det=det: ex.compute(pack_lightcurves(det)), repeat=3 if n_obj <= 10 else 1)
        print(f"| {n_obj} | {1e3 * t / n_obj:.2f} |")


if __name__ == "__main__":
    main()
