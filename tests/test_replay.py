"""Replay on a real Dask LocalCluster: per-object state, idempotence, dead letters."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.store import Store
from alerce.streams.replay import replay

SERIES = ("ztf", "alerts", "series_ZTF19aazzpje")

#: Sort keys of the tables compared between runs.
KEYS = {
    "detection": ["oid", "candid"],
    "non_detection": ["oid", "fid", "mjd"],
    "magstat": ["oid", "fid"],
    "object": ["oid"],
}


def _tables(url: str) -> dict[str, pd.DataFrame]:
    with Store(url) as store:
        out = {}
        for name, key in KEYS.items():
            df = store.read_table(name)
            out[name] = df.sort_values(key).reset_index(drop=True)
    return out


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in KEYS:
        assert len(a[name]) > 0, name
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def _series_files() -> list[str]:
    return sorted(str(p) for p in shared(*SERIES).glob("*.avro"))


def test_series_one_batch_equals_one_alert_per_batch_and_shuffled(tmp_path, dask_client):
    files = _series_files()
    assert len(files) == 14
    one = f"sqlite:///{tmp_path / 'one.db'}"
    s = replay(files, store=one, client=dask_client, batch_size=100, features=False)
    assert s.alerts == 14 and s.bad_alerts == 0 and not s.errors

    each = f"sqlite:///{tmp_path / 'each.db'}"
    for f in files:
        s = replay([f], store=each, client=dask_client, batch_size=1, features=False)
        assert s.alerts == 1 and not s.errors, s.errors[:1]

    shuffled = f"sqlite:///{tmp_path / 'shuffled.db'}"
    order = files[:]
    random.Random(7).shuffle(order)
    assert order != files
    for f in order:
        s = replay([f], store=shuffled, client=dask_client, batch_size=1, features=False)
        assert s.alerts == 1 and not s.errors, s.errors[:1]

    a, b, c = _tables(one), _tables(each), _tables(shuffled)
    _assert_same(a, b)
    _assert_same(a, c)
    # the object really accumulated its history: more detections than alerts
    assert len(a["detection"]) > 14
    assert a["object"]["ndet"].iloc[0] == len(a["detection"])
    assert a["detection"]["has_stamp"].sum() == 14


def test_replay_twice_is_idempotent(tmp_path, dask_client):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    files = _series_files()
    replay(files, store=url, client=dask_client, batch_size=5, features=False)
    first = _tables(url)
    replay(files, store=url, client=dask_client, batch_size=3, features=False)
    _assert_same(first, _tables(url))


def test_all_real_ztf_alerts_replay(tmp_path, dask_client):
    """Every real ZTF alert decodes and is stored; the stored alerts are exactly the unique candids."""
    import fastavro

    root = shared("ztf", "alerts")
    files = sorted(str(p) for p in Path(root).rglob("*.avro"))
    candids, prv = set(), set()
    for f in files:
        with open(f, "rb") as fh:
            for rec in fastavro.reader(fh):
                candids.add((rec["objectId"], rec["candidate"]["candid"]))
                for p in rec.get("prv_candidates") or []:
                    if p.get("candid") is not None:
                        prv.add((rec["objectId"], p["candid"]))
    url = f"sqlite:///{tmp_path / 'all.db'}"
    s = replay(str(root), store=url, client=dask_client, batch_size=200)
    assert s.bad_alerts == 0, s.dead_letters[:3]
    assert not s.errors, s.errors[:1]
    with Store(url) as store:
        det = store.read_table("detection")
    stored = set(zip(det["oid"], det["candid"].astype("int64")))
    stamped = set(zip(det.loc[det["has_stamp"].astype(bool), "oid"],
                      det.loc[det["has_stamp"].astype(bool), "candid"].astype("int64")))
    assert stamped == candids
    assert stored == candids | prv


def test_garbage_packet_goes_to_dead_letters(tmp_path, dask_client):
    files = _series_files()[:3]
    bad = tmp_path / "garbage.avro"
    bad.write_bytes(b"Obj\x01 this is not an avro file" + bytes(range(50)))
    url = f"sqlite:///{tmp_path / 'dl.db'}"
    dl = tmp_path / "dead"
    s = replay([*files, str(bad)], store=url, client=dask_client, batch_size=2, dead_letter=str(dl),
               features=False)
    assert s.alerts == 3
    assert s.bad_alerts == 1
    assert "garbage.avro" in s.dead_letters[0].source
    assert dl.exists() and any(dl.iterdir())
    with Store(url) as store:
        assert store.count("detection") > 0


def test_simulated_night_through_every_science_step(tmp_path, dask_client):
    """Simulator -> replay with features, the light-curve classifier and the stamp classifier."""
    pytest.importorskip("torch")
    from alerce.simulate import simulate

    simulate(tmp_path / "night", n_objects=60, seed=21, nights=1)
    url = f"sqlite:///{tmp_path / 'science.db'}"
    s = replay(str(tmp_path / "night"), store=url, client=dask_client, batch_size=200,
               features=True, lc_classifier=True, stamp_classifier=True)
    assert not s.errors, s.errors[:1]
    with Store(url) as store:
        objects = store.read_table("object")
        prob = store.read_table("probability")
        feats = store.read_table("feature")
        taxonomy = store.read_table("taxonomy")
        scores = store.read_table("score")
    # the stamp classifier ran once per object, five classes summing to one
    stamp = prob[prob["classifier_name"] == "stamp_classifier"]
    assert 0 < stamp["oid"].nunique() <= len(objects)
    sums = stamp.groupby("oid")["probability"].sum()
    assert np.allclose(sums, 1.0, atol=1e-5)
    # every object with features got 15 final probabilities summing to one, ranked 1..15
    with_features = set(feats["oid"])
    lc = prob[prob["classifier_name"] == "lc_classifier"]
    assert with_features and set(lc["oid"]) == with_features
    assert (lc.groupby("oid").size() == 15).all()
    assert np.allclose(lc.groupby("oid")["probability"].sum(), 1.0, atol=1e-6)
    assert (lc.groupby("oid")["ranking"].min() == 1).all()
    assert {"lc_classifier", "lc_classifier_top", "stamp_classifier"} <= set(taxonomy["classifier_name"])
    assert set(scores["oid"]) == with_features


def test_forced_photometry_independent_of_alert_order(tmp_path, dask_client):
    files = sorted(str(p) for p in shared("ztf", "alerts", "kowalski_v4.01_20231012_fp").glob("*.avro"))
    together = f"sqlite:///{tmp_path / 'fp_all.db'}"
    replay(files, store=together, client=dask_client, batch_size=100, features=False)
    shuffled = f"sqlite:///{tmp_path / 'fp_shuffled.db'}"
    order = files[:]
    random.Random(5).shuffle(order)
    for chunk in (order[i:i + 4] for i in range(0, len(order), 4)):
        replay(chunk, store=shuffled, client=dask_client, batch_size=4, features=False)
    key = ["oid", "pid"]
    with Store(together) as a, Store(shuffled) as b:
        fa = a.read_table("forced_photometry").sort_values(key).reset_index(drop=True)
        fb = b.read_table("forced_photometry").sort_values(key).reset_index(drop=True)
    assert len(fa) > 0
    assert not fa.duplicated(key).any()
    pd.testing.assert_frame_equal(fa, fb, check_dtype=False)


def test_same_replay_into_sqlite_and_postgresql_gives_identical_tables(tmp_path, dask_client, pg_url):
    files = _series_files() + sorted(
        str(p) for p in shared("ztf", "alerts", "kowalski_v4.01_20231012_fp").glob("*.avro"))
    lite = f"sqlite:///{tmp_path / 'lite.db'}"
    for url in (lite, pg_url):
        s = replay(files, store=url, client=dask_client, batch_size=10, features=False)
        assert not s.errors, s.errors[:1]
    keys = {**KEYS, "forced_photometry": ["oid", "pid"], "ps1_ztf": ["oid", "candid"],
            "reference": ["oid", "rfid"], "dataquality": ["oid", "candid"], "ss_ztf": ["oid"]}
    with Store(lite) as a, Store(pg_url) as b:
        for name, key in keys.items():
            fa = a.read_table(name).sort_values(key).reset_index(drop=True)
            fb = b.read_table(name).sort_values(key).reset_index(drop=True)
            assert len(fa) > 0, name
            pd.testing.assert_frame_equal(fa, fb, check_dtype=False, obj=name)


def test_crossmatch_node_fills_xmatch_and_feeds_wise_colours(tmp_path, dask_client):
    """A local AllWISE-like catalog with a source on each of a few objects: xmatch/allwise rows are
    stored and the W1-W2 ... features equal the catalog magnitudes minus the objects' mean g/r."""
    from alerce.xmatch import build_catalog

    files = _series_files()
    first = f"sqlite:///{tmp_path / 'pos.db'}"
    replay(files, store=first, client=dask_client, features=False)
    with Store(first) as st:
        obj = st.read_table("object")
    cat = pd.DataFrame({
        "designation": ["J000", "JFAR"],
        "ra": [obj["meanra"].iloc[0] + 0.2 / 3600, obj["meanra"].iloc[0] + 0.1],  # 0.2" and far away
        "dec": [obj["meandec"].iloc[0], obj["meandec"].iloc[0]],
        "w1mpro": [14.0, 10.0], "w2mpro": [13.2, 10.0], "w3mpro": [11.5, 10.0],
        "w1sigmpro": 0.03, "w2sigmpro": 0.03, "w3sigmpro": 0.1, "w4mpro": 9.0, "w4sigmpro": 0.2,
    })
    (tmp_path / "cat").mkdir()
    cat.to_csv(tmp_path / "cat" / "allwise.csv", index=False)
    build_catalog([tmp_path / "cat" / "allwise.csv"], tmp_path / "allwise", "ra", "dec", "designation",
                  nside=8, name="allwise", kind="allwise")
    url = f"sqlite:///{tmp_path / 'xm.db'}"
    s = replay(files, store=url, client=dask_client, features=True,
               xmatch_catalog=str(tmp_path / "allwise"))
    assert not s.errors, s.errors[:1]
    with Store(url) as st:
        xm = st.read_table("xmatch")
        aw = st.read_table("allwise")
        feats = st.read_table("feature")
    assert xm["oid_catalog"].tolist() == ["J000"] and xm["dist"].iloc[0] < 1.0
    assert aw["oid_catalog"].tolist() == ["J000"]
    w = feats[feats["name"] == "W1-W2"]
    assert len(w) == 1 and w["value"].iloc[0] == pytest.approx(14.0 - 13.2)


def _task_numba_threads():
    """(``$ALERCE_NUMBA_THREADS``, numba threads inside ``numba_threads(None)``, threads after)."""
    import os

    import numba

    from alerce.streams.science import numba_threads

    with numba_threads(None):
        inside = numba.get_num_threads()
    return os.environ.get("ALERCE_NUMBA_THREADS"), inside, numba.get_num_threads()


def test_lanes_prefer_round_robin_workers_and_tasks_use_one_numba_thread(dask_client):
    from alerce.streams.nodes import lane_workers
    from alerce.streams.science import numba_threads

    workers = sorted(dask_client.scheduler_info()["workers"])
    prefs = lane_workers(dask_client, 5)
    assert [p[0] for p in prefs] == [workers[i % len(workers)] for i in range(5)]

    env, inside, after = dask_client.submit(_task_numba_threads, pure=False).result()
    assert inside == int(env or 1)           # 1 by default: nested OpenMP threads would oversubscribe
    import numba

    assert after == numba.config.NUMBA_NUM_THREADS  # restored
    before = numba.get_num_threads()
    with numba_threads(None):                # outside a worker: unchanged
        assert numba.get_num_threads() == before
    with numba_threads(1):                   # explicit
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_lanes_run_anywhere_while_the_scheduler_lists_no_workers(dask_client, tmp_path, monkeypatch):
    """A client whose cached scheduler info is empty (just after a restart) must not break a batch."""
    from alerce.simulate import simulate
    from alerce.streams.nodes import lane_workers

    simulate(tmp_path / "night", n_objects=6, seed=3)
    files = [str(p) for p in sorted((tmp_path / "night").rglob("*.avro"))]
    monkeypatch.setattr(dask_client, "scheduler_info", lambda *a, **k: {"workers": {}})
    assert lane_workers(dask_client, 3) == [None, None, None]
    s = replay(files, store=f"sqlite:///{tmp_path / 's.db'}", client=dask_client, batch_size=4,
               features=False)
    assert s.alerts == len(files) and s.failed_batches == 0 and not s.errors


def test_decode_work_drops_stamps_when_no_step_needs_them(tmp_path):
    from alerce.simulate import simulate
    from alerce.streams.replay import decode_work

    simulate(tmp_path / "night", n_objects=5, seed=2)
    files = [str(p) for p in sorted((tmp_path / "night").rglob("*.avro"))]
    with_stamps = decode_work(("files", files))
    without = decode_work(("files", files), keep_stamps=False)
    assert len(with_stamps.stamps) == len(files) and len(without.stamps) == 0
    assert without.alerts["candid"].tolist() == with_stamps.alerts["candid"].tolist()
    # the detection flag that marks an alert's own row does not depend on the cutouts
    assert without.detections["has_stamp"].sum() == with_stamps.detections["has_stamp"].sum() == len(files)


def test_run_batch_reports_seconds_per_stage(tmp_path):
    from alerce.simulate import simulate
    from alerce.streams.replay import decode_work
    from alerce.streams.steps import BatchSummary, PipelineConfig, run_batch

    simulate(tmp_path / "night", n_objects=5, seed=2)
    files = [str(p) for p in sorted((tmp_path / "night").rglob("*.avro"))]
    batch = decode_work(("files", files), keep_stamps=False)
    s = run_batch(batch, PipelineConfig(store_url=f"sqlite:///{tmp_path / 's.db'}", features=True))
    assert not s.errors and set(s.stages) == {"load", "process", "science", "write", "write_wait"}
    assert all(v >= 0 for v in s.stages.values()) and sum(s.stages.values()) <= s.seconds
    both = s + BatchSummary(stages={"load": 1.0, "output": 2.0})
    assert both.stages["load"] == s.stages["load"] + 1.0 and both.stages["output"] == 2.0


def _startup_environ() -> dict[str, str]:
    """The environment this process was started with (what glibc's malloc read at start-up)."""
    with open("/proc/self/environ", "rb") as fh:
        pairs = (item.decode(errors="replace").partition("=") for item in fh.read().split(b"\0") if item)
        return {k: v for k, _, v in pairs}


def test_dask_client_gives_each_task_the_cores_its_workers_leave_and_our_malloc_settings():
    import os

    import numba

    from alerce.streams.cluster import WORKER_MALLOC_ENVIRON, dask_client

    cores = os.cpu_count() or 1
    with dask_client(n_workers=1) as c:
        env, threads, _ = c.submit(_task_numba_threads, pure=False).result()
        started_with = c.submit(_startup_environ, pure=False).result() if os.path.exists("/proc/self/environ") else None
    assert env == str(cores)
    assert threads == min(cores, numba.config.NUMBA_NUM_THREADS)
    if started_with is not None:  # Linux: not Dask's MALLOC_TRIM_THRESHOLD_=65536 (see local_cluster)
        assert {k: started_with.get(k) for k in WORKER_MALLOC_ENVIRON} == WORKER_MALLOC_ENVIRON


def test_state_bounds_read_forced_photometry_from_the_batch_s_first_pid(tmp_path):
    from alerce.simulate import simulate
    from alerce.streams.replay import decode_work
    from alerce.streams.steps import state_bounds

    simulate(tmp_path / "night", n_objects=5, seed=2)
    files = [str(p) for p in sorted((tmp_path / "night").rglob("*.avro"))]
    batch = decode_work(("files", files), keep_stamps=False)
    assert len(batch.forced_photometry)
    assert state_bounds(batch) == {"forced_photometry": ("pid", int(batch.forced_photometry["pid"].min()))}
    batch.forced_photometry = batch.forced_photometry.iloc[:0]
    assert state_bounds(batch) == {"forced_photometry": ("pid", None)}  # nothing to compare: not read


def test_rewritten_stored_detections_keep_the_columns_not_read_back(tmp_path):
    """Stored detections are read without some columns; rewriting them must not null those."""
    from alerce.simulate import simulate
    from alerce.store import Store
    from alerce.streams.replay import decode_work
    from alerce.streams.steps import (
        STATE_COLUMNS,
        UNREAD_DETECTION_COLUMNS,
        PipelineConfig,
        process_alerts,
        run_batch,
    )

    simulate(tmp_path / "sim", n_objects=6, seed=8, nights=2)
    nights = sorted(p for p in (tmp_path / "sim").iterdir() if p.is_dir())
    url = f"sqlite:///{tmp_path / 's.db'}"
    first = decode_work(("files", sorted(map(str, nights[0].glob("*.avro")))), keep_stamps=False)
    assert not run_batch(first, PipelineConfig(store_url=url, features=False)).errors
    store = Store(url)
    before = store.read_table("detection").set_index(["oid", "candid"])
    second = decode_work(("files", sorted(map(str, nights[1].glob("*.avro")))), keep_stamps=False)
    state = store.load_state(list(second.oids), columns=STATE_COLUMNS)
    assert not set(UNREAD_DETECTION_COLUMNS) & set(state["detection"].columns)
    # a stored row the new batch does not repeat, whose stored flag differs from the recomputed one
    repeated = set(zip(second.detections["oid"], second.detections["candid"]))
    stored = state["detection"]
    keys = list(zip(stored["oid"], stored["candid"]))
    row = next((i for i, k in enumerate(keys) if k not in repeated), 0)  # else: drop its copy below
    key = (keys[row][0], int(keys[row][1]))
    second.detections = second.detections[
        ~((second.detections["oid"] == key[0]) & (second.detections["candid"] == key[1]))]
    state["detection"].loc[row, "dubious"] = not bool(stored["dubious"].iloc[row])
    tables = process_alerts(second, state).tables
    written = tables["detection"]
    parts = written if isinstance(written, list) else [written]
    assert any(((p["oid"] == key[0]) & (p["candid"] == key[1])).any() for p in parts)  # rewritten
    store.write(tables)
    after = store.read_table("detection").set_index(["oid", "candid"])
    kept = [c for c in ("magap", "sigmagap", "rbversion", "drb", "drbversion", "nid", "pid")
            if pd.notna(before.loc[key, c])]
    assert kept, "the simulated detection should carry these columns"
    for c in kept:
        assert after.loc[key, c] == before.loc[key, c], c
    assert bool(after.loc[key, "dubious"]) == bool(before.loc[key, "dubious"])  # recomputed value
    # every other detection of the first night keeps every column too
    common = before.index.intersection(after.index)
    for c in kept:
        assert after.loc[common, c].notna().sum() >= before.loc[common, c].notna().sum(), c


def test_features_written_incrementally_equal_features_of_the_final_light_curves(tmp_path, dask_client):
    """Small batches reuse the stored band-local features of bands without new points and skip
    feature rows the store already holds (same value and version); the stored features still
    equal those computed once from every alert."""
    from alerce.simulate import simulate
    from alerce.store.arrow_reader import adbc_available

    simulate(tmp_path / "sim", n_objects=40, seed=23, nights=2)
    nights = sorted(str(p) for p in (tmp_path / "sim").iterdir() if p.is_dir())
    once, steps = f"sqlite:///{tmp_path / 'once.db'}", f"sqlite:///{tmp_path / 'steps.db'}"
    replay(nights, store=once, client=dask_client, batch_size=100_000, features=True)
    reused = 0
    for night in nights:
        s = replay(night, store=steps, client=dask_client, batch_size=15, features=True)
        assert not s.errors, s.errors[:1]
        reused += s.reused_bands
    key = ["oid", "name", "fid"]
    with Store(once) as a, Store(steps) as b:
        fa = a.read_table("feature").sort_values(key).reset_index(drop=True)
        fb = b.read_table("feature").sort_values(key).reset_index(drop=True)
        assert b.reads_columnar == adbc_available()  # with ADBC, the skipping path ran
    assert len(fa) > 1000
    if adbc_available():  # the stored features of unchanged bands were reused, and it shows nowhere
        assert reused > 20
    pd.testing.assert_frame_equal(fa, fb)


def test_unchanged_feature_rows_are_not_rewritten(tmp_path):
    pytest.importorskip("adbc_driver_sqlite")
    from alerce.streams.steps import without_unchanged_features

    feature = pd.DataFrame({"oid": ["a", "a", "a", "b"], "name": ["x", "y", "z", "x"], "fid": [1, 1, 0, 1],
                            "value": [1.5, np.nan, 2.0, 3.0], "version": "v1"})
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.write({"feature": feature.iloc[:3]})
        objects = feature[["oid"]]
        again = without_unchanged_features(store, {"feature": feature, "object": objects})
        assert list(zip(again["feature"]["oid"], again["feature"]["name"])) == [("b", "x")]
        assert again["object"] is objects  # other tables untouched
        changed = feature.assign(value=[1.5, 7.0, 2.0, 3.0], version=["v1", "v1", "v2", "v1"])
        rows = without_unchanged_features(store, {"feature": changed})["feature"]
        assert list(zip(rows["name"], rows["fid"], rows["oid"])) == [("y", 1, "a"), ("z", 0, "a"), ("x", 1, "b")]
    with Store(f"sqlite:///{tmp_path / 's.db'}", arrow_reads=False) as store:  # rows path: no skipping
        assert len(without_unchanged_features(store, {"feature": feature})["feature"]) == 4


def test_packets_routed_by_lane_before_decoding_store_what_decode_then_split_stores(tmp_path, dask_client):
    from alerce.io import Packet, iter_packets
    from alerce.simulate import simulate
    from alerce.streams.replay import replay_packets

    simulate(tmp_path / "sim", n_objects=60, seed=4, nights=2)
    packets = list(iter_packets(sorted(str(p) for p in (tmp_path / "sim").rglob("*.avro"))))
    garbage = Packet("garbage", b"Obj\x01 this is not an avro file" + bytes(range(50)))
    # the garbage packet sends its batch (only) down the decode-then-split path, where it is a dead letter
    packets.insert(len(packets) // 2, garbage)
    stores = {}
    for route in (True, False):
        url = f"sqlite:///{tmp_path / f'route_{route}.db'}"
        s = replay_packets(packets, store=url, client=dask_client, batch_size=40, route_packets=route)
        assert s.alerts == len(packets) - 1 and s.bad_alerts == 1 and not s.errors, s.errors[:1]
        assert [d.source.split(":")[0] for d in s.dead_letters] == ["garbage"]
        stores[route] = _tables(url)
    _assert_same(stores[True], stores[False])


def test_replay_with_the_session_s_default_client_finishes(tmp_path, dask_client):
    """A notebook's ``Client()`` is the default client: streamz would run the pipeline on its loop."""
    import threading

    from distributed import Client

    files = _series_files()  # skips here, in the test's thread, when the real data is absent
    result = {}

    def run():
        with Client(dask_client.scheduler.address) as default:  # set_as_default=True, as in a notebook
            result["summary"] = replay(files, store=f"sqlite:///{tmp_path / 'nb.db'}",
                                       client=default, batch_size=4, features=False)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), "replay with a default client did not finish in 120 s"
    s = result["summary"]
    assert s.alerts == len(files) and not s.errors, s.errors[:1]


def test_gathered_results_are_values_on_the_client_s_own_loop(dask_client):
    from streamz import Stream

    import alerce.streams.nodes  # noqa: F401  (registers gather_results)

    source = Stream(asynchronous=False, loop=dask_client.loop)
    out = source.gather_results().sink_to_list()
    source.emit(dask_client.submit(sum, [1, 2, 3]))
    assert out == [6]
