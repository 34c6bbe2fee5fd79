"""Query API (alerce.query) on SQLite and PostgreSQL stores filled by writing frames directly."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from conftest import shared

from alerce.query import (
    AlerceQuery,
    ObjectNotFoundError,
    QueryError,
    angular_distance,
    cone,
    connect,
)
from alerce.store import Store

CLASSES = ["SNIa", "SNII", "QSO", "RRL"]


def _random_sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def make_frames(seed: int = 3) -> dict[str, pd.DataFrame]:
    """Objects spread over the sky plus clusters at both poles and across RA = 0/360."""
    rng = np.random.default_rng(seed)
    ra, dec = _random_sky(rng, 600)
    # clusters: north pole, south pole, RA wrap at dec 10 and at dec -60, around (120, 30)
    clusters = [(0.0, 89.995, 40), (200.0, -89.99, 40), (0.0, 10.0, 60), (359.99, -60.0, 40), (120.0, 30.0, 60)]
    cra, cdec = [ra], [dec]
    for r0, d0, n in clusters:
        off = rng.normal(0, 20 / 3600, (n, 2))
        d = np.clip(d0 + off[:, 1], -90, 90)
        cra.append((r0 + off[:, 0] / max(np.cos(np.radians(d0)), 1e-3)) % 360)
        cdec.append(d)
    ra, dec = np.concatenate(cra), np.concatenate(cdec)
    n = len(ra)
    oids = np.array([f"ZTF20obj{i:05d}" for i in range(n)])
    ndet = rng.integers(1, 50, n)
    firstmjd = rng.uniform(58000, 59000, n).round(3)
    firstmjd[5] = firstmjd[6] = firstmjd[7] = 58500.0  # ties: pagination must stay stable
    objects = pd.DataFrame({
        "oid": oids, "meanra": ra, "meandec": dec, "ndet": ndet, "firstmjd": firstmjd,
        "lastmjd": firstmjd + rng.uniform(0, 300, n), "corrected": rng.random(n) < 0.3,
        "stellar": rng.random(n) < 0.5, "ndethist": ndet + 2, "ncovhist": ndet + 10,
        "g_r_mean": np.where(rng.random(n) < 0.2, np.nan, rng.normal(0.3, 0.2, n)),
    })
    det_oids = oids[:5]
    det = pd.DataFrame({
        "oid": np.repeat(det_oids, 4), "candid": np.arange(20, dtype=np.int64) + 10**18,
        "mjd": np.tile([59001.5, 59000.5, 59003.5, 59002.5], 5), "fid": np.tile([1, 2, 1, 2], 5),
        "magpsf": rng.normal(18, 1, 20), "sigmapsf": rng.uniform(0.01, 0.2, 20),
        "ra": np.repeat(ra[:5], 4), "dec": np.repeat(dec[:5], 4), "has_stamp": True, "isdiffpos": 1,
    })
    non = pd.DataFrame({"oid": np.repeat(det_oids[:3], 3), "fid": np.tile([1, 2, 1], 3),
                        "mjd": np.tile([58990.1, 58991.2, 58992.3], 3), "diffmaglim": 20.5})
    fp = pd.DataFrame({"oid": np.repeat(det_oids[:2], 2), "pid": np.arange(4, dtype=np.int64) + 5000,
                       "mjd": [59010.0, 59005.0, 59011.0, 59012.0], "fid": [1, 2, 1, 2],
                       "forcediffimflux": [100.0, -5.0, 30.0, np.nan]})
    mag = pd.DataFrame({"oid": np.repeat(det_oids, 2), "fid": np.tile([2, 1], 5), "ndet": 2,
                        "magmean": rng.normal(18, 1, 10)})
    p = rng.dirichlet(np.ones(len(CLASSES)), n)
    rank = (-p).argsort(1).argsort(1) + 1
    prob = pd.DataFrame({
        "oid": np.repeat(oids, len(CLASSES)), "class_name": np.tile(CLASSES, n),
        "classifier_name": "lc_classifier", "classifier_version": "1.0",
        "probability": p.ravel(), "ranking": rank.ravel(),
    })
    stamp = pd.DataFrame({"oid": oids[:50], "class_name": "SN", "classifier_name": "stamp_classifier",
                          "classifier_version": "1.0.0", "probability": 0.9, "ranking": 1})
    tax = pd.DataFrame({"classifier_name": ["lc_classifier"], "classifier_version": ["1.0"],
                        "classes": [CLASSES]})
    feat = pd.DataFrame({"oid": np.repeat(det_oids[:2], 3), "name": np.tile(["Amplitude", "Amplitude", "Mean"], 2),
                         "fid": np.tile([1, 2, 1], 2), "version": "1.0", "value": [0.5, 0.6, 18.0, 0.1, 0.2, 17.0]})
    return {"object": objects, "detection": det, "non_detection": non, "forced_photometry": fp, "magstat": mag,
            "probability": pd.concat([prob, stamp], ignore_index=True), "taxonomy": tax, "feature": feat}


@pytest.fixture(scope="module")
def frames():
    return make_frames()


@pytest.fixture(scope="module")
def sqlite_client(tmp_path_factory, frames):
    url = f"sqlite:///{tmp_path_factory.mktemp('q') / 'q.db'}"
    with Store(url) as st:
        st.write(frames)
    client = AlerceQuery(url)
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, frames, sqlite_client):
    if request.param == "sqlite":
        yield sqlite_client
        return
    url = request.getfixturevalue("pg_url")
    with Store(url) as st:
        st.write(frames)
    c = connect(url)
    yield c
    c.close()


# -- cone search --------------------------------------------------------------------------------
CENTRES = [  # (ra, dec, radius arcsec)
    (0.0, 90.0, 60.0), (37.0, 89.99, 40.0), (200.0, -89.99, 50.0), (0.0, -90.0, 80.0),
    (0.0, 10.0, 30.0), (359.999, 10.0, 30.0), (0.0005, 10.0, 45.0), (359.99, -60.0, 60.0),
    (120.0, 30.0, 25.0), (10.0, 20.0, 5 * 3600.0), (180.0, -45.0, 10 * 3600.0), (359.0, 0.0, 3 * 3600.0),
    (45.0, 80.0, 15 * 3600.0), (0.0, 0.0, 0.0),
]


def brute_cone(objects, ra, dec, radius_arcsec):
    c = SkyCoord(objects["meanra"].to_numpy() * u.deg, objects["meandec"].to_numpy() * u.deg)
    sep = c.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec
    return sorted(objects["oid"].to_numpy()[sep <= radius_arcsec])


def test_angular_distance_matches_astropy():
    rng = np.random.default_rng(0)
    ra1, dec1 = _random_sky(rng, 2000)
    ra2, dec2 = _random_sky(rng, 2000)
    ref = SkyCoord(ra1 * u.deg, dec1 * u.deg).separation(SkyCoord(ra2 * u.deg, dec2 * u.deg)).deg
    np.testing.assert_allclose(angular_distance(ra1, dec1, ra2, dec2), ref, atol=1e-9)


def test_ra_windows_cover_the_circle():
    rng = np.random.default_rng(5)
    for ra0, dec0, r in [(0.0, 10.0, 1.0), (359.5, -70.0, 2.0), (100.0, 88.0, 1.0), (100.0, 89.5, 1.0)]:
        w = cone.ra_windows(ra0, dec0, r)
        pa = rng.uniform(0, 2 * np.pi, 5000)
        pts = SkyCoord(ra0 * u.deg, dec0 * u.deg).directional_offset_by(pa * u.rad, r * u.deg * rng.random(5000))
        ras = pts.ra.deg
        if w is None:
            assert abs(dec0) + r >= 90
            continue
        inside = np.zeros(len(ras), bool)
        for lo, hi in w:
            inside |= (ras >= lo) & (ras <= hi)
        assert inside.all(), (ra0, dec0, r)


@pytest.mark.parametrize("ra,dec,radius", CENTRES)
def test_cone_search_matches_astropy(client, frames, ra, dec, radius):
    expected = brute_cone(frames["object"], ra, dec, radius)
    got = client.query_objects(ra=ra, dec=dec, radius=radius, page_size=10_000)
    assert sorted(got["oid"]) == expected
    assert client.query_objects(ra=ra, dec=dec, radius=radius, count=True) == len(expected)


def test_cone_prefilter_path_equals_astropy(sqlite_client, frames):
    for ra, dec, radius in CENTRES:
        assert sorted(sqlite_client.cone_oids(ra, dec, radius)) == brute_cone(frames["object"], ra, dec, radius)


def test_pg_uses_q3c_and_agrees_with_sqlite(frames, sqlite_client, request):
    url = request.getfixturevalue("pg_url")
    with Store(url) as st:
        st.write(frames)
    with AlerceQuery(url) as pg:
        if not pg.has_q3c:
            pytest.skip("q3c extension not installed in this PostgreSQL")
        for ra, dec, radius in CENTRES:
            a = pg.query_objects(ra=ra, dec=dec, radius=radius, page_size=500, order_by="ndet", order_mode="DESC")
            b = sqlite_client.query_objects(ra=ra, dec=dec, radius=radius, page_size=500, order_by="ndet",
                                            order_mode="DESC")
            pd.testing.assert_frame_equal(a, b)


def test_cone_errors(client):
    with pytest.raises(QueryError, match="together"):
        client.query_objects(ra=10.0, dec=5.0)
    with pytest.raises(ValueError, match="dec must be"):
        client.query_objects(ra=10.0, dec=95.0, radius=3)
    with pytest.raises(ValueError, match="radius must be"):
        client.query_objects(ra=10.0, dec=5.0, radius=-1)


# -- filters, ordering, pagination ---------------------------------------------------------------
def test_filters_match_pandas(client, frames):
    obj, prob = frames["object"], frames["probability"]
    got = client.query_objects(classifier="lc_classifier", class_name="SNIa", probability=0.3,
                               ndet=[5, 30], firstmjd=[58100, 58900], page_size=1000)
    top = prob[(prob.classifier_name == "lc_classifier") & (prob.class_name == "SNIa") & (prob.ranking == 1)
               & (prob.probability >= 0.3)]
    sel = obj[obj.oid.isin(top.oid) & obj.ndet.between(5, 30) & obj.firstmjd.between(58100, 58900)]
    assert sorted(got["oid"]) == sorted(sel["oid"])
    assert len(got) > 0
    assert (got["class_name"] == "SNIa").all() and (got["ranking"] == 1).all()
    assert got["oid"].is_monotonic_increasing  # default order: oid


def test_ranking_and_oid_filters(client, frames):
    prob = frames["probability"]
    oids = list(frames["object"]["oid"][:30])
    got = client.query_objects(classifier="lc_classifier", ranking=2, oid=oids, page_size=100)
    exp = prob[(prob.classifier_name == "lc_classifier") & (prob.ranking == 2) & prob.oid.isin(oids)]
    assert dict(zip(got["oid"], got["class_name"])) == dict(zip(exp["oid"], exp["class_name"]))
    assert client.query_objects(oid=oids, count=True) == 30


@pytest.mark.parametrize("order_by,mode", [("firstmjd", "ASC"), ("firstmjd", "DESC"), ("g_r_mean", "ASC"),
                                           ("oid", "DESC"), ("ndet", "DESC")])
def test_pagination_is_stable_and_complete(client, frames, order_by, mode):
    total = client.query_objects(count=True)
    assert total == len(frames["object"])
    pages = [client.query_objects(page=p, page_size=97, order_by=order_by, order_mode=mode)
             for p in range(1, total // 97 + 3)]
    allrows = pd.concat(pages, ignore_index=True)
    assert len(allrows) == total and allrows["oid"].is_unique
    obj = frames["object"].copy()
    asc = mode == "ASC"
    if order_by == "oid":
        exp = obj.sort_values("oid", ascending=asc)["oid"].tolist()
    else:
        # NULLs last, ties broken by oid ascending
        key = obj[order_by].to_numpy(dtype=float)
        key = np.where(np.isnan(key), np.inf, key if asc else -key)
        exp = obj.assign(_k=key).sort_values(["_k", "oid"])["oid"].tolist()
    assert allrows["oid"].tolist() == exp
    again = client.query_objects(page=3, page_size=97, order_by=order_by, order_mode=mode)
    pd.testing.assert_frame_equal(again, pages[2])


def test_query_objects_errors_list_valid_values(client):
    with pytest.raises(QueryError, match="valid classifiers: .*lc_classifier"):
        client.query_objects(classifier="nope")
    with pytest.raises(QueryError, match="valid classes: .*SNIa"):
        client.query_objects(classifier="lc_classifier", class_name="Nova")
    with pytest.raises(QueryError, match="valid columns: .*firstmjd"):
        client.query_objects(order_by="bogus")
    with pytest.raises(QueryError, match="ASC"):
        client.query_objects(order_mode="sideways")
    with pytest.raises(QueryError, match=">= 1"):
        client.query_objects(page=0)
    with pytest.raises(QueryError, match=r"\[min, max\]"):
        client.query_objects(ndet=[1, 2, 3])
    with pytest.raises(ValueError, match="valid formats: pandas, json, votable, csv"):
        client.query_objects(format="xml")


# -- formats -----------------------------------------------------------------------------------
def test_formats_agree(client):
    kw = dict(ndet=[10, 20], page_size=7, order_by="ndet")
    df = client.query_objects(**kw)
    js = client.query_objects(format="json", **kw)
    assert isinstance(js, list) and [r["oid"] for r in js] == df["oid"].tolist()
    json.dumps(js, allow_nan=False)  # plain JSON: NaN became None
    assert all(r["g_r_mean"] is None for r, v in zip(js, df["g_r_mean"]) if np.isnan(v))
    csv = client.query_objects(format="csv", **kw)
    back = pd.read_csv(io.StringIO(csv))
    assert back["oid"].tolist() == df["oid"].tolist()
    np.testing.assert_allclose(back["meanra"], df["meanra"])
    from astropy.io.votable import parse_single_table

    vo = client.query_objects(format="votable", **kw)
    t = parse_single_table(io.BytesIO(vo)).to_table()
    assert [str(x) for x in t["oid"]] == df["oid"].tolist()
    np.testing.assert_allclose(np.asarray(t["ndet"]), df["ndet"])


# -- per-object methods -------------------------------------------------------------------------
def test_query_object(client, frames):
    obj = frames["object"].set_index("oid")
    oid = frames["object"]["oid"][3]
    d = client.query_object(oid)
    assert d["oid"] == oid and d["ndet"] == obj.loc[oid, "ndet"]
    assert client.query_object(oid, format="pandas")["meanra"] == pytest.approx(obj.loc[oid, "meanra"])
    with pytest.raises(ObjectNotFoundError):
        client.query_object("ZTF00nothere")


def test_lightcurve_methods(client, frames):
    oid = frames["object"]["oid"][1]
    det = client.query_detections(oid)
    exp = frames["detection"].query("oid == @oid").sort_values("mjd")
    assert det["candid"].tolist() == exp["candid"].tolist()
    np.testing.assert_allclose(det["magpsf"], exp["magpsf"])
    non = client.query_non_detections(oid)
    assert non["mjd"].tolist() == sorted(frames["non_detection"].query("oid == @oid")["mjd"])
    lc = client.query_lightcurve(oid, format="json")
    assert len(lc["detections"]) == 4 and len(lc["non_detections"]) == 3
    lc4 = client.query_lightcurve(frames["object"]["oid"][4])  # detections, no non-detections
    assert len(lc4["detections"]) == 4 and len(lc4["non_detections"]) == 0
    fp = client.query_forced_photometry(frames["object"]["oid"][0])
    assert fp["mjd"].tolist() == [59005.0, 59010.0] and fp["pid"].tolist() == [5001, 5000]
    ms = client.query_magstats(oid)
    assert ms["fid"].tolist() == [1, 2]
    by_mag = client.query_detections(oid, sort="magpsf")
    assert by_mag["magpsf"].is_monotonic_increasing and len(by_mag) == 4
    with pytest.raises(QueryError, match="valid columns: .*magpsf"):
        client.query_detections(oid, sort="nope")
    both = client.query_detections(list(frames["object"]["oid"][:2]))
    assert len(both) == 8
    with pytest.raises(ObjectNotFoundError):
        client.query_detections("ZTF00nothere")
    # an existing object without detections gives an empty frame, not an error
    assert len(client.query_detections(frames["object"]["oid"][100])) == 0


def test_probabilities_features_classifiers(client, frames):
    oid = frames["object"]["oid"][0]
    p = client.query_probabilities(oid)
    assert set(p["classifier_name"]) == {"lc_classifier", "stamp_classifier"}
    lc = client.query_probabilities(oid, classifier="lc_classifier")
    assert lc["ranking"].tolist() == [1, 2, 3, 4]
    assert lc["probability"].is_monotonic_decreasing
    with pytest.raises(QueryError, match="valid classifiers"):
        client.query_probabilities(oid, classifier="xx")
    f = client.query_features(oid)
    assert f[["name", "fid"]].values.tolist() == [["Amplitude", 1], ["Amplitude", 2], ["Mean", 1]]
    one = client.query_feature(oid, "Amplitude")
    assert one["value"].tolist() == [0.5, 0.6]
    with pytest.raises(QueryError, match="Amplitude"):
        client.query_feature(oid, "NotAFeature")
    cls = client.query_classifiers()
    assert {(c["classifier_name"], c["classifier_version"]) for c in cls} == {
        ("lc_classifier", "1.0"), ("stamp_classifier", "1.0.0")}
    assert client.query_classes("lc_classifier", "1.0") == CLASSES
    assert client.query_classes("stamp_classifier") == ["SN"]
    with pytest.raises(QueryError, match="valid versions"):
        client.query_classes("lc_classifier", "9")
    with pytest.raises(QueryError, match="valid classifiers"):
        client.query_classes("nope")


# -- archive -------------------------------------------------------------------------------------
def test_get_avro_and_stamps_from_archive(tmp_path):
    from alerce.io import iter_packets, read_alerts
    from alerce.streams.archive import archive_packets

    src = shared("ztf", "alerts", "kowalski_v3.3_20200202")
    packets = list(iter_packets(str(src)))[:2]
    batch = read_alerts([p.source for p in packets])
    root = tmp_path / "archive"
    assert archive_packets(packets, batch, str(root)) == 2
    url = f"sqlite:///{tmp_path / 's.db'}"
    det = batch.detections
    with Store(url) as st:
        st.write({"detection": det, "object": det.groupby("oid", as_index=False).agg(
            meanra=("ra", "mean"), meandec=("dec", "mean"))})
    alert = batch.alerts.iloc[0]
    with AlerceQuery(url, archive=str(root)) as q:
        raw = q.get_avro(alert["oid"], candid=int(alert["candid"]))
        assert raw == next(p.payload for p in packets if p.source == alert["source"])
        stamps = q.get_stamps(alert["oid"], candid=int(alert["candid"]), format="numpy")
        row = batch.stamps[batch.stamps["candid"] == alert["candid"]].iloc[0]
        from alerce.io import decode_stamp

        np.testing.assert_array_equal(stamps["science"], decode_stamp(row["science"]))
        hdus = q.get_stamps(alert["oid"], candid=int(alert["candid"]))
        np.testing.assert_array_equal(np.asarray(hdus["difference"][0].data, dtype=np.float32),
                                      decode_stamp(row["difference"]))
        default = q.get_avro(alert["oid"])  # first detection carrying stamps = the alert itself
        assert default == raw
        with pytest.raises(FileNotFoundError, match="123"):
            q.get_avro(alert["oid"], candid=123)
    with AlerceQuery(url) as q, pytest.raises(QueryError, match="archive"):
        q.get_stamps(alert["oid"])


def test_new_classifier_visible_at_once(tmp_path, frames):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with Store(url) as st, AlerceQuery(st) as q:
        st.write({"object": frames["object"].iloc[:5], "probability": frames["probability"].iloc[:8]})
        assert q.query_objects(classifier="lc_classifier", count=True) == 2
        with pytest.raises(QueryError, match="valid classifiers: \\['lc_classifier'\\]"):
            q.query_objects(classifier="new_clf")
        st.write({"probability": pd.DataFrame({"oid": [frames["object"]["oid"][0]], "class_name": ["X"],
                                               "classifier_name": ["new_clf"], "classifier_version": ["2"],
                                               "probability": [1.0], "ranking": [1]})})
        got = q.query_objects(classifier="new_clf", class_name="X")  # the cached list is refreshed
        assert got["oid"].tolist() == [frames["object"]["oid"][0]]


def test_real_alerts_processed_then_queried(tmp_path):
    """Real ZTF alerts through the pipeline's batch step, then read back with the query API."""
    from alerce.io import iter_packets, read_alerts
    from alerce.streams.archive import archive_packets
    from alerce.streams.steps import PipelineConfig, run_batch

    src = shared("ztf", "alerts", "kowalski_v3.3_20200202")
    packets = list(iter_packets(str(src)))
    batch = read_alerts([p.source for p in packets])
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = run_batch(batch, PipelineConfig(store_url=url, features=False))
    assert not summary.errors, summary.errors
    archive_packets(packets, batch, str(tmp_path / "arch"))
    with AlerceQuery(url, archive=str(tmp_path / "arch")) as q:
        assert q.query_objects(count=True) == batch.alerts["oid"].nunique()
        for oid in batch.alerts["oid"].unique()[:4]:
            lc = q.query_lightcurve(oid)
            det = batch.detections[batch.detections["oid"] == oid]
            assert set(lc["detections"]["candid"]) == set(det["candid"].astype("int64"))
            assert lc["detections"]["mjd"].is_monotonic_increasing
            nd = batch.non_detections[batch.non_detections["oid"] == oid]
            assert len(lc["non_detections"]) == len(nd.drop_duplicates(["fid", "mjd"]))
            ms = q.query_magstats(oid)
            counts = det.drop_duplicates("candid").groupby("fid").size()
            assert dict(zip(ms["fid"], ms["ndet"])) == {int(k): int(v) for k, v in counts.items()}
            o = q.query_object(oid)
            assert oid in q.query_objects(ra=o["meanra"], dec=o["meandec"], radius=1.0)["oid"].tolist()
            assert abs(o["meanra"] - det["ra"].mean()) < 1 / 3600
            st = q.get_stamps(oid, format="numpy")
            assert st["science"].ndim == 2 and st["difference"].shape == st["science"].shape


def test_send_query_read_only(client, frames):
    df = client.send_query("SELECT oid, ndet FROM object WHERE ndet >= :n ORDER BY oid", params={"n": 40})
    exp = frames["object"][frames["object"].ndet >= 40].sort_values("oid")
    assert df["oid"].tolist() == exp["oid"].tolist()
    assert df["ndet"].tolist() == exp["ndet"].tolist()
    with pytest.raises(QueryError, match="SELECT"):
        client.send_query("DELETE FROM object")
    with pytest.raises(QueryError, match="SELECT"):
        client.send_query("SELECT 1; DELETE FROM object")
    with pytest.raises(QueryError, match="query failed"):
        client.send_query("WITH x AS (DELETE FROM object RETURNING oid) SELECT * FROM x")
    assert client.query_objects(count=True) == len(frames["object"])
    with pytest.raises(QueryError, match="query failed"):
        client.send_query("SELECT nope FROM object")
