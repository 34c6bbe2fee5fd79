"""ZTF decoding checked against an independent ``fastavro.reader`` pass over the same files."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import fastavro
import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.batch import DETECTION_COLUMNS, FORCED_PHOTOMETRY_COLUMNS, NON_DETECTION_COLUMNS
from alerce.io import iter_packets, read_alerts
from alerce.io.ztf import ALERT_COLUMNS

FOLDERS = [
    "alerce_single", "alerce_v3.x_samples_snappy", "ampel_v3.0_20180819", "fink_v3.3_20200101",
    "fink_v4.02_20231018", "kowalski_v3.3_20200202", "kowalski_v4.01_20231012_fp",
    "series_ZTF19aazzpje", "series_nostamps", "ztf_avro_alert_official",
]


def reference(folder: Path) -> list[dict]:
    """Every alert record of a folder, read with plain fastavro.reader."""
    out = []
    for path in sorted(folder.rglob("*.avro")):
        with open(path, "rb") as fh:
            reader = fastavro.reader(fh)
            for rec in reader:
                rec["_codec"] = reader.codec
                out.append(rec)
    return out


@pytest.mark.parametrize("name", FOLDERS)
def test_folder_matches_fastavro(name):
    folder = shared("ztf", "alerts", name)
    ref = reference(folder)
    batch = read_alerts(folder)
    assert batch.dead_letters == []
    assert len(batch.alerts) == len(ref)
    assert tuple(batch.alerts.columns) == ALERT_COLUMNS
    assert tuple(batch.detections.columns) == DETECTION_COLUMNS
    assert tuple(batch.non_detections.columns) == NON_DETECTION_COLUMNS
    assert tuple(batch.forced_photometry.columns) == FORCED_PHOTOMETRY_COLUMNS

    ref_candid = [r["candidate"]["candid"] for r in ref]
    assert sorted(batch.alerts["candid"].tolist()) == sorted(ref_candid)
    by_candid = {r["candidate"]["candid"]: r for r in ref}
    alerts = batch.alerts.set_index("candid")
    for candid, rec in by_candid.items():
        row = alerts.loc[candid]
        if isinstance(row, pd.DataFrame):  # a duplicated alert in a folder
            row = row.iloc[0]
        cand = rec["candidate"]
        assert row["oid"] == rec["objectId"]
        assert row["jd"] == cand["jd"]
        assert row["mjd"] == pytest.approx(cand["jd"] - 2400000.5, abs=1e-9)
        assert row["isdiffpos"] == (1 if cand["isdiffpos"] in ("t", "1") else -1)
        assert row["magpsf"] == pytest.approx(cand["magpsf"], rel=1e-7)
        assert row["schemavsn"] == rec["schemavsn"]

    # previous detections / non-detections / forced photometry per alert
    det = batch.detections
    prv_det = det[det["parent_candid"].notna()]
    det_counts = prv_det.groupby(prv_det["parent_candid"].astype("int64")).size()
    nd_counts = batch.non_detections.groupby(
        batch.non_detections["parent_candid"].astype("int64")).size()
    fp_counts = batch.forced_photometry.groupby(
        batch.forced_photometry["parent_candid"].astype("int64")).size()
    exp_det: dict = {}
    exp_nd: dict = {}
    exp_fp: dict = {}
    n_prv_det = n_nd = n_fp = 0
    for rec in ref:  # a folder may hold the same alert twice: sum over records
        candid = rec["candidate"]["candid"]
        prv = [p for p in (rec.get("prv_candidates") or []) if p is not None]
        fps = len(rec.get("fp_hists") or [])
        if prv and "candid" not in prv[0]:  # 3.5 test schema: forced photometry in prv
            fps += len(prv)
            prv = []
        dets = sum(p["candid"] is not None for p in prv)
        exp_det[candid] = exp_det.get(candid, 0) + dets
        exp_nd[candid] = exp_nd.get(candid, 0) + len(prv) - dets
        exp_fp[candid] = exp_fp.get(candid, 0) + fps
        n_prv_det += dets
        n_nd += len(prv) - dets
        n_fp += fps
    for candid in exp_det:
        assert det_counts.get(candid, 0) == exp_det[candid]
        assert nd_counts.get(candid, 0) == exp_nd[candid]
        assert fp_counts.get(candid, 0) == exp_fp[candid]
    assert len(det) == len(ref) + n_prv_det
    assert len(batch.non_detections) == n_nd
    assert len(batch.forced_photometry) == n_fp
    # own candidates carry the stamp flag, previous ones never do
    assert det["has_stamp"].sum() == len(ref)
    assert det.loc[det["has_stamp"], "parent_candid"].isna().all()
    assert det["isdiffpos"].isin([1, -1]).all()


def test_prv_detection_values_and_mjdendref():
    folder = shared("ztf", "alerts", "kowalski_v3.3_20200202")
    ref = reference(folder)
    batch = read_alerts(folder)
    det = batch.detections
    rec = max(ref, key=lambda r: len(r["prv_candidates"] or []))
    cand = rec["candidate"]
    own = det[(det["candid"] == cand["candid"]) & det["has_stamp"]].iloc[0]
    assert own["mjdendref"] == pytest.approx(cand["jdendref"] - 2400000.5)
    assert own["magnr"] == pytest.approx(cand["magnr"], rel=1e-6)
    sub = det[det["parent_candid"] == cand["candid"]].set_index("candid")
    for p in rec["prv_candidates"]:
        if p["candid"] is None:
            continue
        row = sub.loc[p["candid"]]
        assert row["mjd"] == pytest.approx(p["jd"] - 2400000.5, abs=1e-9)
        assert row["fid"] == p["fid"]
        assert np.isnan(row["mjdendref"])
        assert row["isdiffpos"] == (1 if p["isdiffpos"] in ("t", "1") else -1)
        assert (np.isnan(row["magnr"]) if p["magnr"] is None
                else row["magnr"] == pytest.approx(p["magnr"], rel=1e-6))
    nd = batch.non_detections[batch.non_detections["parent_candid"] == cand["candid"]]
    ref_nd = sorted(p["jd"] - 2400000.5 for p in rec["prv_candidates"] if p["candid"] is None)
    assert np.allclose(np.sort(nd["mjd"].to_numpy()), ref_nd)


def test_forced_photometry_v401():
    folder = shared("ztf", "alerts", "kowalski_v4.01_20231012_fp")
    ref = reference(folder)
    batch = read_alerts(folder)
    fp = batch.forced_photometry
    assert len(fp) > 0
    flux_ref = np.array([np.nan if h["forcediffimflux"] is None else h["forcediffimflux"]
                         for r in ref for h in (r.get("fp_hists") or [])], dtype=float)
    pid_ref = [h["pid"] for r in ref for h in (r.get("fp_hists") or [])]
    # the batch keeps packet order, so rows line up with the reference pass
    assert fp["pid"].tolist() == pid_ref
    assert np.allclose(fp["forcediffimflux"].to_numpy(), flux_ref, equal_nan=True, rtol=1e-7)
    jd_ref = np.array([h["jd"] for r in ref for h in (r.get("fp_hists") or [])])
    assert np.allclose(fp["mjd"].to_numpy(), jd_ref - 2400000.5)


def test_snappy_files_decode():
    folder = shared("ztf", "alerts", "alerce_v3.x_samples_snappy")
    ref = reference(folder)
    assert {r["_codec"] for r in ref} >= {"snappy"}
    batch = read_alerts(folder)
    assert batch.dead_letters == []
    assert set(batch.alerts["schemavsn"]) == {"3.0", "3.1", "3.2", "3.3"}
    drb = {r["candidate"]["candid"]: r["candidate"].get("drb") for r in ref}
    for candid, value in zip(batch.alerts["candid"], batch.alerts["drb"], strict=True):
        assert (np.isnan(value) if drb[candid] is None else value == pytest.approx(drb[candid]))


def test_fields_missing_from_old_schemas_are_nan():
    batch = read_alerts(shared("ztf", "alerts", "ampel_v3.0_20180819"))
    assert (batch.alerts["schemavsn"] == "3.0").all()
    assert batch.alerts["drb"].isna().all() and batch.alerts["exptime"].isna().all()
    assert batch.alerts["drbversion"].isna().all()
    assert batch.detections["drb"].isna().all()


def test_stamps_are_raw_bytes():
    folder = shared("ztf", "alerts", "fink_v3.3_20200101")
    ref = {r["candidate"]["candid"]: r for r in reference(folder)}
    batch = read_alerts(folder)
    for row in batch.stamps.itertuples():
        rec = ref[row.candid]
        assert row.science == rec["cutoutScience"]["stampData"]
        assert row.difference == rec["cutoutDifference"]["stampData"]
    assert len(read_alerts(folder, keep_stamps=False).stamps) == 0


def test_tarball_streams(tmp_path):
    folder = shared("ztf", "alerts", "ampel_v3.0_20180819")
    tarball = tmp_path / "ztf_public_20180819.tar.gz"
    files = sorted(folder.glob("*.avro"))
    with tarfile.open(tarball, "w:gz") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
    packets = list(iter_packets(tarball))
    assert len(packets) == len(files)
    assert all(p.source.startswith(str(tarball) + "::") for p in packets)
    assert packets[0].payload == files[0].read_bytes()
    batch = read_alerts(tarball)
    direct = read_alerts(folder)
    assert sorted(batch.alerts["candid"]) == sorted(direct.alerts["candid"])
    assert len(batch.detections) == len(direct.detections)


def test_truncated_tarball_keeps_good_members(tmp_path):
    folder = shared("ztf", "alerts", "ampel_v3.0_20180819")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.glob("*.avro")):
            tar.add(f, arcname=f.name)
    data = buf.getvalue()
    bad = tmp_path / "ztf_public_broken.tar.gz"
    bad.write_bytes(data[: len(data) // 2])
    batch = read_alerts(bad)
    assert 0 < len(batch.alerts) < 30
    assert len(batch.dead_letters) >= 1
    assert "tarball" in batch.dead_letters[-1].reason


def test_fsspec_memory_and_file_urls():
    fsspec = pytest.importorskip("fsspec")
    folder = shared("ztf", "alerts", "series_ZTF19aazzpje")
    fs = fsspec.filesystem("memory")
    for f in sorted(folder.glob("*.avro")):
        fs.pipe(f"/alerce_test_io/{f.name}", f.read_bytes())
    try:
        mem = read_alerts("memory://alerce_test_io/")
        files = read_alerts(f"file://{folder}")
        direct = read_alerts(folder)
        assert len(mem.alerts) == 14
        for b in (mem, files):
            assert b.alerts["candid"].tolist() == direct.alerts["candid"].tolist()
        assert mem.alerts["source"].str.startswith("memory://").all()
    finally:
        fs.rm("/alerce_test_io", recursive=True)


def test_same_columns_across_schema_versions():
    old = read_alerts(shared("ztf", "alerts", "ampel_v3.0_20180819"))
    new = read_alerts(shared("ztf", "alerts", "fink_v4.02_20231018"))
    for name in ("alerts", "detections", "non_detections", "forced_photometry", "stamps"):
        a, b = getattr(old, name), getattr(new, name)
        assert list(a.columns) == list(b.columns), name
        assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist(), name


def test_packet_bundle_is_the_packets_and_ships_as_one_buffer():
    from distributed.protocol import dumps, loads
    from distributed.protocol.serialize import ToPickle

    from alerce.io import decode_packets
    from alerce.io.sources import PacketBundle

    packets = list(iter_packets(shared("ztf", "alerts", "series_ZTF19aazzpje")))
    bundle = PacketBundle(packets)
    assert len(bundle) == len(packets) and list(bundle) == packets
    assert bundle[-1] == packets[-1] and bundle[1:3] == packets[1:3]
    with pytest.raises(IndexError):
        bundle[len(packets)]
    frames = dumps({"x": ToPickle(("packets", bundle))})
    # the payloads travel as one out-of-band frame, not inside the pickle
    assert max(len(memoryview(f)) for f in frames) >= sum(len(p.payload) for p in packets)
    back = loads(frames)["x"]
    back = getattr(back, "data", back)[1]
    assert list(back) == packets
    assert decode_packets(back).alerts["candid"].tolist() == decode_packets(packets).alerts["candid"].tolist()
    assert len(PacketBundle([])) == 0
