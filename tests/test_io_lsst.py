"""Rubin/LSST decoding: container files, Confluent wire format, schema registries, Parquet."""

from __future__ import annotations

import http.server
import io
import json
import threading
from pathlib import Path

import astropy.units as u
import fastavro
import numpy as np
import pytest
from conftest import shared

from alerce.batch import FID
from alerce.io import (
    ConfluentSchemaRegistry,
    LocalSchemaRegistry,
    Packet,
    decode_packets,
    read_alerts,
    read_parquet_alerts,
)

LSST_AVRO = ["rubin_v9.0_single", "rubin_v9.0_lsstcam_20250905_avro",
             "rubin_v7.4_opsrehearsal_avro_subset", "elasticc_simulated/elasticc_v0.9_sim_avro"]


def alert_packet_schema_dir() -> Path:
    pkt = pytest.importorskip("lsst.alert.packet")  # GPL: tests only
    return Path(pkt.__file__).parent / "schema"


def ab_mag(flux_njy: float) -> float:
    """Independent AB magnitude of a flux in nJy (astropy units)."""
    return (abs(flux_njy) * u.nJy).to(u.ABmag).value


def oid_of(rec: dict) -> str:
    src = rec["diaSource"]
    if rec.get("diaObject"):
        return str(rec["diaObject"]["diaObjectId"])
    if src.get("diaObjectId"):
        return str(src["diaObjectId"])
    return str(src["ssObjectId"])


@pytest.mark.parametrize("name", LSST_AVRO)
def test_lsst_containers_match_fastavro(name):
    folder = shared("lsst", *name.split("/"))
    ref = []
    for path in sorted(folder.glob("*.avro")):
        with open(path, "rb") as fh:
            ref.extend(fastavro.reader(fh))
    batch = read_alerts(folder)
    assert batch.dead_letters == []
    assert len(batch.alerts) == len(ref)
    assert (batch.alerts["survey"] == "lsst").all()
    assert batch.alerts["candid"].tolist() == [r["diaSource"]["diaSourceId"] for r in ref]
    assert batch.alerts["oid"].tolist() == [oid_of(r) for r in ref]
    n_prv = sum(len(r.get("prvDiaSources") or []) for r in ref)
    n_fp = sum(len(r.get("prvDiaForcedSources") or []) for r in ref)
    assert len(batch.detections) == len(ref) + n_prv
    assert len(batch.forced_photometry) == n_fp
    for rec, (_, row) in zip(ref, batch.alerts.iterrows(), strict=True):
        src = rec["diaSource"]
        flux = src.get("psfFlux", src.get("psFlux"))
        mjd = src.get("midpointMjdTai", src.get("midPointTai"))
        band = src.get("band", src.get("filterName"))
        assert row["mjd"] == mjd
        assert row["fid"] == FID[band.lower()]
        if flux:
            assert row["magpsf"] == pytest.approx(ab_mag(flux), abs=2e-3)  # 31.4 vs 8.9+22.5
            err = src.get("psfFluxErr", src.get("psFluxErr"))
            assert row["sigmapsf"] == pytest.approx(2.5 / np.log(10) * err / abs(flux), rel=1e-3)
            assert row["isdiffpos"] == (1 if flux > 0 else -1)


def test_solar_system_sources_use_ssobjectid():
    folder = shared("lsst", "rubin_v9.0_lsstcam_20250905_avro")
    batch = read_alerts(folder)
    ss = batch.alerts[batch.alerts["diaObjectId"] == 0]
    assert len(ss) > 0
    assert (ss["oid"] == ss["ssObjectId"].astype(str)).all()


def test_forced_sources_mapping():
    folder = shared("lsst", "rubin_v7.4_opsrehearsal_avro_subset")
    ref = [r for p in sorted(folder.glob("*.avro")) for r in fastavro.reader(open(p, "rb"))]
    fp = read_alerts(folder).forced_photometry
    flux = [f["psfFlux"] for r in ref for f in (r["prvDiaForcedSources"] or [])]
    assert np.allclose(fp["forcediffimflux"], flux)
    # magzpsci - 2.5 log10(flux) is the AB magnitude of the nJy flux
    pos = fp["forcediffimflux"] > 0
    mags = fp.loc[pos, "magzpsci"] - 2.5 * np.log10(fp.loc[pos, "forcediffimflux"])
    ref_mags = [ab_mag(f) for f in fp.loc[pos, "forcediffimflux"]]
    assert np.allclose(mags, ref_mags, atol=2e-3)


def wire_packets() -> list[Packet]:
    folder = shared("lsst", "rubin_confluent_wire_v7.4")
    return [Packet(str(p), p.read_bytes()) for p in sorted(folder.glob("message_*.avro"))]


def test_confluent_wire_with_local_registry():
    packets = wire_packets()
    root = alert_packet_schema_dir()
    schema = fastavro.schema.load_schema(str(root / "7" / "4" / "lsst.v7_4.alert.avsc"))
    ref = [fastavro.schemaless_reader(io.BytesIO(p.payload[5:]), schema) for p in packets]
    assert all(p.payload[0] == 0 and int.from_bytes(p.payload[1:5], "big") == 704 for p in packets)

    explicit = LocalSchemaRegistry({704: root / "7" / "4" / "lsst.v7_4.alert.avsc"})
    by_dir = LocalSchemaRegistry.from_directory(root)
    packaged = LocalSchemaRegistry.from_lsst_alert_packet()
    for registry in (explicit, by_dir, packaged):
        batch = decode_packets(packets, registry=registry)
        assert batch.dead_letters == []
        assert batch.alerts["candid"].tolist() == [r["diaSource"]["diaSourceId"] for r in ref]
        assert (batch.alerts["schemavsn"] == "lsst.v7_4").all()
        n_prv = sum(len(r["prvDiaSources"] or []) for r in ref)
        assert len(batch.detections) == len(ref) + n_prv
        assert batch.stamps["science"].tolist() == [r["cutoutScience"] for r in ref]
    # default registry: the optional lsst-alert-packet schemas
    assert len(decode_packets(packets).alerts) == len(packets)


class _Registry(http.server.BaseHTTPRequestHandler):
    schemas: dict = {}
    hits: list = []

    def do_GET(self):  # noqa: N802 - http.server API
        self.hits.append(self.path)
        sid = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/schemas/ids/") and sid in self.schemas:
            body = json.dumps({"schema": self.schemas[sid]}).encode()
            self.send_response(200)
        else:
            body = b'{"error_code":40403,"message":"Schema not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_confluent_registry_over_http():
    packets = wire_packets()
    root = alert_packet_schema_dir()
    schema = fastavro.schema.load_schema(str(root / "7" / "4" / "lsst.v7_4.alert.avsc"))
    _Registry.schemas = {"704": json.dumps(_strip(schema))}
    _Registry.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        reg = ConfluentSchemaRegistry(f"http://127.0.0.1:{server.server_port}")
        batch = decode_packets(packets, registry=reg)
        assert batch.dead_letters == [] and len(batch.alerts) == 5
        assert _Registry.hits == ["/schemas/ids/704"]  # fetched once, then cached
        bad = bytearray(packets[0].payload)
        bad[1:5] = (999).to_bytes(4, "big")
        out = decode_packets([Packet("topic/0/17", bytes(bad)), packets[1]], registry=reg)
        assert len(out.alerts) == 1 and len(out.dead_letters) == 1
        assert "unknown schema id 999" in out.dead_letters[0].reason
        assert out.dead_letters[0].source.startswith("topic/0/17")
    finally:
        server.shutdown()
        server.server_close()


def _strip(schema):
    """A fastavro-parsed schema back to plain JSON-able Avro (drop fastavro's private keys)."""
    if isinstance(schema, dict):
        return {k: _strip(v) for k, v in schema.items() if not k.startswith("__")}
    if isinstance(schema, list):
        return [_strip(x) for x in schema]
    return schema


@pytest.mark.parametrize("name", [
    "rubin_v10.0_lsstcam_20251231_25.parquet",
    "rubin_v7.1_or4_parquet/part-00000-96629e4a-60d4-442b-a338-687a16b8a35c-c000.snappy.parquet",
    "elasticc_simulated/agn_elasticc_alerts.parquet",
])
def test_lsst_parquet(name):
    pq = pytest.importorskip("pyarrow.parquet")
    path = shared("lsst", *name.split("/"))
    table = pq.read_table(path, columns=["diaSource", "prvDiaSources", "prvDiaForcedSources"])
    rows = table.to_pylist()
    batch = read_parquet_alerts(path)
    assert batch.dead_letters == []
    assert batch.alerts["candid"].tolist() == [r["diaSource"]["diaSourceId"] for r in rows]
    assert len(batch.detections) == len(rows) + sum(len(r["prvDiaSources"] or []) for r in rows)
    assert len(batch.forced_photometry) == sum(
        len([f for f in (r["prvDiaForcedSources"] or []) if f is not None]) for r in rows)


def test_mixed_survey_batch():
    pytest.importorskip("lsst.alert.packet")
    ztf = sorted(shared("ztf", "alerts", "fink_v3.3_20200101").glob("*.avro"))[:3]
    lsst = sorted(shared("lsst", "rubin_v9.0_lsstcam_20250905_avro").glob("*.avro"))[:2]
    packets = [Packet(str(p), p.read_bytes()) for p in ztf + lsst] + wire_packets()[:2]
    batch = decode_packets(packets, registry=LocalSchemaRegistry.from_lsst_alert_packet())
    assert batch.dead_letters == []
    assert batch.alerts["survey"].value_counts().to_dict() == {"ztf": 3, "lsst": 4}
    assert batch.detections["candid"].dtype == "int64"
    assert set(batch.detections["oid"]) >= set(batch.alerts["oid"])
    only_ztf = decode_packets(packets, survey="ztf")
    assert len(only_ztf.alerts) == 3 and len(only_ztf.dead_letters) == 4
