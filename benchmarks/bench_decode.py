"""Benchmark: ``alerce.io.decode_packets`` vs a plain ``fastavro.reader`` loop on real ZTF alerts.

Every real ZTF alert under ``../shared/data/ztf/alerts`` is read into memory and the set is
repeated to about 5,000 packets. Both contenders see the same bytes in the same process:

* baseline: ``for rec in fastavro.reader(BytesIO(payload))`` (records only, no frames);
* alerce: ``decode_packets(packets)`` -> the full columnar ``AlertBatch`` (stamps kept as bytes).

A second run does the same on history-rich alerts: the third night of a simulated survey
(``simulate(n_objects=600, nights=3)``), ~160 history rows (previous candidates, forced
photometry) per alert, where the decoder's row arrays must grow.

Run: ``python benchmarks/bench_decode.py [n_packets]``.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import fastavro

from alerce.io import Packet, decode_packets

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ALERCE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load(n: int) -> list[Packet]:
    files = sorted((DATA / "ztf" / "alerts").rglob("*.avro"))
    if not files:
        sys.exit(f"no ZTF alerts under {DATA} (set ALERCE_SHARED_DATA)")
    base = [Packet(str(f), f.read_bytes()) for f in files]
    return [base[i % len(base)] for i in range(n)]


def baseline(packets: list[Packet]) -> int:
    n = 0
    for p in packets:
        for _ in fastavro.reader(io.BytesIO(p.payload)):
            n += 1
    return n


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    packets = load(n)
    mb = sum(len(p.payload) for p in packets) / 1e6
    decode_packets(packets[:50])  # warm-up (schema cache, imports)
    t_base = best_of(lambda: baseline(packets), 2)
    t_ours = best_of(lambda: decode_packets(packets), 2)
    t_nostamp = best_of(lambda: decode_packets(packets, keep_stamps=False), 1)
    batch = decode_packets(packets)
    print(f"packets: {n} ({mb:.1f} MB), detections {len(batch.detections)}, "
          f"non-detections {len(batch.non_detections)}, dead letters {len(batch.dead_letters)}")
    print(f"fastavro.reader loop : {n / t_base:8.0f} alerts/s  {mb / t_base:6.1f} MB/s")
    print(f"alerce decode_packets: {n / t_ours:8.0f} alerts/s  {mb / t_ours:6.1f} MB/s "
          "(full AlertBatch, stamps as bytes)")
    print(f"  keep_stamps=False  : {n / t_nostamp:8.0f} alerts/s")
    print(f"ratio alerce / fastavro.reader: {t_base / t_ours:.2f}x")
    simulated()


def simulated() -> None:
    """History-rich simulated alerts: ours (stamps dropped) vs the fastavro loop."""
    import shutil
    import tempfile

    from alerce.io import iter_packets
    from alerce.simulate import simulate

    tmp = Path(tempfile.mkdtemp(prefix="alerce-bench-decode-"))
    try:
        simulate(tmp / "sim", n_objects=600, seed=5, nights=3)
        last = sorted(p for p in (tmp / "sim").iterdir() if p.is_dir())[-1]
        packets = list(iter_packets(str(last)))
        decode_packets(packets[:50], keep_stamps=False)
        t_base = best_of(lambda: baseline(packets), 2)
        t_ours = best_of(lambda: decode_packets(packets, keep_stamps=False), 3)
        batch = decode_packets(packets, keep_stamps=False)
        rows = (len(batch.detections) + len(batch.non_detections) + len(batch.forced_photometry)) / len(packets)
        n = len(packets)
        print(f"simulated night 3: {n} alerts, {rows:.0f} history rows per alert")
        print(f"fastavro.reader loop : {n / t_base:8.0f} alerts/s")
        print(f"alerce decode_packets: {n / t_ours:8.0f} alerts/s (keep_stamps=False); "
              f"ratio {t_base / t_ours:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
