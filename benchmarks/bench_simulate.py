"""Benchmark of the alert simulator: alerts/s and MB/s written with stamps.

Baseline (same process, same simulation): the cutouts serialized with astropy.io.fits
(``PrimaryHDU.writeto`` + gzip) instead of the hand-written FITS header + zlib writer.

Usage: ``python benchmarks/bench_simulate.py [--n-objects 1500] [--nights 1]``
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def astropy_fits_gz(image: np.ndarray, level: int = 1) -> bytes:
    """Baseline stamp serializer: astropy FITS writer + gzip."""
    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(image, dtype=np.float32)).writeto(buf)
    return gzip.compress(buf.getvalue(), compresslevel=max(level, 1), mtime=0)


def run(n_objects: int, nights: int, root: Path, label: str) -> tuple[float, float, int, float]:
    """Alerts/s and MB/s (wall clock), alert count, alerts per CPU second of this process."""
    from alerce.simulate import simulate

    out = root / label
    t0, c0 = time.perf_counter(), time.process_time()
    s = simulate(out, n_objects, seed=1, nights=nights)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    shutil.rmtree(out)
    return s.n_alerts / dt, s.bytes_written / dt / 1e6, s.n_alerts, s.n_alerts / dc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-objects", type=int, default=1500)
    ap.add_argument("--nights", type=int, default=1)
    args = ap.parse_args()
    import alerce.simulate.alerts as alerts_mod
    from alerce.simulate import make_stamps
    from alerce.simulate.stamps import fits_gz_bytes

    root = Path(tempfile.mkdtemp(prefix="bench_simulate_"))
    try:
        run(50, 1, root, "warmup")  # numba compilation, imports
        ours_rate, ours_mb, n, ours_cpu = run(args.n_objects, args.nights, root, "ours")
        original = alerts_mod.fits_gz_bytes
        alerts_mod.fits_gz_bytes = astropy_fits_gz
        try:
            base_rate, base_mb, _, base_cpu = run(args.n_objects, args.nights, root, "astropy")
        finally:
            alerts_mod.fits_gz_bytes = original
        # stamp serialization alone
        rng = np.random.default_rng(0)
        imgs = [im for _ in range(100) for im in make_stamps("SNIa", rng)]
        t0 = time.perf_counter()
        for im in imgs:
            fits_gz_bytes(im)
        t_ours = (time.perf_counter() - t0) / len(imgs)
        t0 = time.perf_counter()
        for im in imgs:
            astropy_fits_gz(im)
        t_base = (time.perf_counter() - t0) / len(imgs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"simulate: {args.n_objects} objects, {args.nights} night(s), {n} alerts with stamps")
    print(f"  ours    : {ours_rate:8.1f} alerts/s  {ours_mb:6.2f} MB/s  "
          f"({ours_cpu:.0f} alerts per CPU-second)")
    print(f"  astropy : {base_rate:8.1f} alerts/s  {base_mb:6.2f} MB/s  "
          f"({base_cpu:.0f} alerts per CPU-second; stamps via astropy.io.fits)")
    print(f"  ratio (ours / astropy baseline): {ours_rate / base_rate:.2f}x wall, "
          f"{ours_cpu / base_cpu:.2f}x CPU")
    print(f"stamp serialization: ours {t_ours * 1e3:.3f} ms, astropy {t_base * 1e3:.3f} ms "
          f"per 63x63 stamp -> {t_base / t_ours:.2f}x")


if __name__ == "__main__":
    main()
