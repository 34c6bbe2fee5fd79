"""Write a simulated ZTF alert stream to disk: :func:`simulate`.

Layout of ``out_dir``::

    <YYYYMMDD>/<candid>.avro          one alert per Avro container file (tarball=False)
    ztf_public_<YYYYMMDD>.tar.gz      the same files in a nightly tarball (tarball=True)
    truth.csv                         one row per simulated object (class, group, parameters)
    summary.json                      counts per night and class, parameters of the run

Objects are simulated in chunks of :data:`CHUNK_SIZE` with one random generator per chunk, and
every chunk's alerts are written before the next chunk is drawn, so memory stays bounded for
any number of alerts. Output is byte-identical for the same arguments (fixed Avro sync marker,
gzip mtime 0, fixed tar metadata, sorted tar members).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd

from alerce.io.schemas.ztf_4_02 import ZTF_4_02_SCHEMA
from alerce.simulate.alerts import iter_alerts, night_of
from alerce.simulate.cadence import NID_ZERO_MJD, make_schedule
from alerce.simulate.classes import normalize_mix, sample_classes
from alerce.simulate.core import field_centers, simulate_chunk
from alerce.simulate.lightcurves import LABEL_PARAM_COLUMNS

#: Objects per chunk (fixed: part of the definition of the random streams).
CHUNK_SIZE = 1000
#: Days of simulated history before ``start_mjd`` (feeds prv_candidates, fp_hists, ndethist).
PRE_HISTORY_DAYS = 60.0
DEFAULT_START_MJD = 60310.0  # 2024-01-01

_PARSED = fastavro.parse_schema(ZTF_4_02_SCHEMA)
_MAP_SCHEMA = fastavro.parse_schema({"type": "map", "values": "bytes"})


def _sub_schemas() -> dict[str, dict]:
    fields = {f["name"]: f["type"] for f in ZTF_4_02_SCHEMA["fields"]}
    cutout = fields["cutoutScience"][1]
    return {
        "candidate": fastavro.parse_schema(fields["candidate"]),
        "prv_candidates": fastavro.parse_schema(fields["prv_candidates"][1]),
        "fp_hists": fastavro.parse_schema(fields["fp_hists"][1]),
        "cutout": fastavro.parse_schema(cutout),
    }


# Sub-schemas encoded one by one: fastavro resolves a union holding a record or an array by
# validating the whole value against every branch, which is slow for long histories. The
# union branch index is written here instead (same bytes as the full-schema encoding).
_SUB = _sub_schemas()
_STRING_FIELDS = ("schemavsn", "publisher", "objectId")
_OPTIONAL = ("prv_candidates", "fp_hists", "cutoutScience", "cutoutTemplate",
             "cutoutDifference")


def mjd_of_candid(candid: int) -> float:
    """Exposure MJD encoded in a simulated candid (night id + time of night, 1e-5 d)."""
    pid = int(candid) // 10**6
    nid, frac = pid // 10**9, (pid // 10**4) % 10**5
    return NID_ZERO_MJD + nid + frac * 1e-5


def _zigzag(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class AvroAlertWriter:
    """Write single-record Avro container files with a precomputed header.

    Parameters
    ----------
    sync_marker : bytes
        16-byte sync marker (fixed for deterministic output).
    """

    def __init__(self, sync_marker: bytes):
        if len(sync_marker) != 16:
            raise ValueError("Avro sync marker must be 16 bytes")
        self.sync = sync_marker
        meta = io.BytesIO()
        fastavro.schemaless_writer(meta, _MAP_SCHEMA, {
            "avro.schema": json.dumps(ZTF_4_02_SCHEMA, separators=(",", ":")).encode(),
            "avro.codec": b"null",
        })
        self.header = b"Obj\x01" + meta.getvalue() + sync_marker

    @staticmethod
    def encode_body(record: dict) -> bytes:
        """Schemaless Avro encoding of one alert record (ZTF 4.02 schema)."""
        parts = []
        for name in _STRING_FIELDS:
            raw = record[name].encode("utf-8")
            parts.append(_zigzag(len(raw)))
            parts.append(raw)
        parts.append(_zigzag(int(record["candid"])))
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, _SUB["candidate"], record["candidate"])
        for name in _OPTIONAL:
            value = record.get(name)
            if value is None:
                buf.write(b"\x00")
            else:
                buf.write(b"\x02")
                sub = _SUB["cutout"] if name.startswith("cutout") else _SUB[name]
                fastavro.schemaless_writer(buf, sub, value)
        parts.append(buf.getvalue())
        return b"".join(parts)

    def encode(self, record: dict) -> bytes:
        """Bytes of a complete Avro container file holding the alert dict ``record``."""
        return self.container(self.encode_body(record))

    def container(self, data: bytes) -> bytes:
        """Bytes of a complete Avro container file holding one already-encoded record."""
        return b"".join((self.header, _zigzag(1), _zigzag(len(data)), data, self.sync))


@dataclass
class SimulationSummary:
    """What :func:`simulate` wrote.

    Attributes
    ----------
    out_dir : str
        Output directory.
    n_objects, n_alerts : int
        Objects simulated and alerts written.
    alerts_per_night : dict
        ``{YYYYMMDD: n}``.
    alerts_per_class, objects_per_class : dict
        Counts by true class.
    files : list of str
        Written Avro files or tarballs, relative to ``out_dir``.
    bytes_written : int
        Total size of the alert files / tarballs.
    seed, nights, start_mjd, tarball : run parameters
    elapsed : float
        Wall time in seconds (not part of ``summary.json``, which is deterministic).
    """

    out_dir: str
    n_objects: int
    n_alerts: int
    alerts_per_night: dict[str, int]
    alerts_per_class: dict[str, int]
    objects_per_class: dict[str, int]
    files: list[str] = field(repr=False)
    bytes_written: int
    seed: int
    nights: int
    start_mjd: float
    tarball: bool
    mix: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0

    def __str__(self) -> str:
        nights = ", ".join(f"{k}: {v}" for k, v in self.alerts_per_night.items())
        return (f"simulated {self.n_objects} objects -> {self.n_alerts} alerts ({nights}) in "
                f"{self.out_dir} [{len(self.files)} files, {self.bytes_written / 1e6:.1f} MB, "
                f"{self.elapsed:.1f} s, {self.alerts_per_second:.0f} alerts/s]")

    @property
    def alerts_per_second(self) -> float:
        """Alerts written per second of wall time."""
        return self.n_alerts / self.elapsed if self.elapsed > 0 else float("nan")


_TRUTH_COLUMNS = ("oid", "class", "group", "ra", "dec", "field", "n_alerts", "first_alert_mjd",
                  *LABEL_PARAM_COLUMNS)


def _tar_night(night_dir: Path, target: Path, mtime: int) -> int:
    files = sorted(night_dir.glob("*.avro"), key=lambda p: int(p.stem))
    with open(target, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=1,
                           filename="") as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for p in files:
                    info = tarfile.TarInfo(p.name)
                    info.size = p.stat().st_size
                    info.mtime = mtime
                    info.mode = 0o644
                    info.uname = info.gname = "ztf"
                    with open(p, "rb") as fh:
                        tar.addfile(info, fh)
    shutil.rmtree(night_dir)
    return target.stat().st_size


def simulate(
    out_dir: str | Path,
    n_objects: int,
    seed: int,
    nights: int = 1,
    start_mjd: float = DEFAULT_START_MJD,
    tarball: bool = False,
    *,
    mix: Sequence[str] | Mapping[str, float] | None = None,
    stamps: bool = True,
    stamp_level: int = 1,
    overwrite: bool = False,
) -> SimulationSummary:
    """Simulate ``nights`` nights of the ZTF public alert stream and write them to disk.

    Parameters
    ----------
    out_dir : str or Path
        Output directory (created; must be empty unless ``overwrite``).
    n_objects : int
        Number of simulated objects (variable, transient, asteroid and bogus sources).
    seed : int
        Random seed; the output is byte-identical for the same arguments.
    nights : int
        Number of consecutive nights of alerts, starting at ``start_mjd``.
    start_mjd : float
        MJD of the first night (default 60310 = 2024-01-01).
    tarball : bool
        Write one ``ztf_public_YYYYMMDD.tar.gz`` per night (like the ZTF archive) instead of
        ``YYYYMMDD/<candid>.avro`` files.
    mix : sequence or mapping of class names, optional
        Class fractions (default :data:`alerce.simulate.classes.DEFAULT_MIX`).
    stamps : bool
        Attach the three cutouts to every alert.
    stamp_level : int
        zlib compression level of the cutouts (0-9).
    overwrite : bool
        Remove an existing non-empty ``out_dir`` first.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    ValueError
        On invalid counts, an unknown class, or a non-empty ``out_dir`` without ``overwrite``.
    """
    t_start = time.perf_counter()
    if n_objects < 0:
        raise ValueError(f"n_objects must be >= 0, got {n_objects}")
    if nights < 1:
        raise ValueError(f"nights must be >= 1, got {nights}")
    if not 0 <= stamp_level <= 9:
        raise ValueError(f"stamp_level must be in 0..9, got {stamp_level}")
    weights = normalize_mix(mix)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"output directory {out} is not empty (use overwrite=True)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    seed = int(seed)
    start_mjd = float(start_mjd)
    end_mjd = start_mjd + nights
    root = np.random.default_rng([seed, 0])
    n_fields = max(1, n_objects // 200)
    schedule = make_schedule(root, n_fields, start_mjd - PRE_HISTORY_DAYS, end_mjd,
                             in_season=start_mjd + nights / 2, visit_probability=(0.6, 0.95),
                             second_exposure=(0.7, 0.7), always_visit=(start_mjd, end_mjd))
    fra, fdec = field_centers(root, n_fields)
    peak_range = (start_mjd - 40.0, end_mjd + 15.0)
    writer = AvroAlertWriter(hashlib.md5(f"alerce.simulate/{seed}".encode()).digest())

    per_night: Counter[str] = Counter()
    per_class: Counter[str] = Counter()
    obj_class: Counter[str] = Counter()
    nbytes = 0
    night_dirs: dict[str, Path] = {}
    with open(out / "truth.csv", "w", newline="") as fh:
        fh.write(",".join(_TRUTH_COLUMNS) + "\n")
        for k, lo in enumerate(range(0, n_objects, CHUNK_SIZE)):
            crng = np.random.default_rng([seed, 1, k])
            cls = sample_classes(min(CHUNK_SIZE, n_objects - lo), weights, crng)
            chunk = simulate_chunk(cls, crng, schedule, fra, fdec, index_offset=lo, seed=seed,
                                   peak_range=peak_range, event_range=(start_mjd, end_mjd))
            n_alerts = np.zeros(len(cls), dtype=np.int64)
            first_alert = np.full(len(cls), np.nan)
            arng = np.random.default_rng([seed, 2, k])
            for candid, night, o, body in iter_alerts(chunk, (start_mjd, end_mjd), arng,
                                                      stamps=stamps, stamp_level=stamp_level):
                d = night_dirs.get(night)
                if d is None:
                    d = night_dirs[night] = out / night
                    d.mkdir(exist_ok=True)
                data = writer.container(body)
                (d / f"{candid}.avro").write_bytes(data)
                nbytes += len(data)
                per_night[night] += 1
                n_alerts[o] += 1
                mjd = mjd_of_candid(candid)
                if not mjd >= first_alert[o]:
                    first_alert[o] = mjd
            objs = chunk.objects
            for c, k in zip(*np.unique(objs["cls"].to_numpy().astype(str), return_counts=True),
                            strict=True):
                obj_class[str(c)] += int(k)
            for c, k in zip(objs["cls"].to_numpy(), n_alerts, strict=True):
                per_class[c] += int(k)
            table = pd.DataFrame({
                "oid": objs["oid"].to_numpy(), "class": objs["cls"].to_numpy(),
                "group": objs["group"].to_numpy(), "ra": objs["ra"].to_numpy(),
                "dec": objs["dec"].to_numpy(), "field": objs["field"].to_numpy(),
                "n_alerts": n_alerts, "first_alert_mjd": first_alert,
                **{col: objs[col].to_numpy() for col in LABEL_PARAM_COLUMNS},
            }).round(6)
            fh.write(table.to_csv(header=False, index=False, na_rep="", lineterminator="\n"))

    files: list[str] = []
    if tarball:
        nbytes = 0
        for night in sorted(night_dirs):
            name = f"ztf_public_{night}.tar.gz"
            mtime = int((np.floor(start_mjd) - 40587) * 86400)
            nbytes += _tar_night(night_dirs[night], out / name, max(mtime, 0))
            files.append(name)
    else:
        for night in sorted(night_dirs):
            files.extend(sorted((f"{night}/{p.name}" for p in night_dirs[night].glob("*.avro")),
                                key=lambda s: int(s.split("/")[1][:-5])))

    all_nights = [night_of(start_mjd + i) for i in range(nights)]
    summary = SimulationSummary(
        out_dir=str(out), n_objects=n_objects, n_alerts=sum(per_night.values()),
        alerts_per_night={n: per_night.get(n, 0) for n in all_nights},
        alerts_per_class=dict(sorted(per_class.items())),
        objects_per_class=dict(sorted(obj_class.items())),
        files=files, bytes_written=nbytes, seed=seed, nights=nights, start_mjd=start_mjd,
        tarball=tarball, mix=weights,
    )
    doc = asdict(summary)
    doc.pop("elapsed")
    doc.pop("files")
    doc.pop("out_dir")
    doc["schema"] = "ztf 4.02"
    doc["n_files"] = len(files)
    (out / "summary.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    summary.elapsed = time.perf_counter() - t_start
    return summary
