"""HEALPix indices, partitioned catalogs, local cross-match, WISE metadata, user cross-match service."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky

from alerce.store import Store
from alerce.xmatch import (
    ALLWISE_COLUMNS,
    XMATCH_COLUMNS,
    ang2pix_nest,
    ang2pix_ring,
    build_catalog,
    cone_pixels,
    crossmatch,
    crossmatch_tables,
    main_catalog,
    main_service,
    match_user_catalog,
    wise_metadata,
)


def sky(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


# -- HEALPix ------------------------------------------------------------------------------------
# poles, RA wrap, the cap/belt transition (|z| = 2/3); points exactly on a pixel edge are ambiguous
# (each implementation may pick either side) and are not compared
EDGE_RA = np.array([0.0, 90.0, 359.9999999, 0.0, 0.0, 45.0, 45.0, 180.0000001, 270.0000003])
EDGE_DEC = np.array([90.0, -90.0, 0.0, 41.8103148958, -41.8103148958, 89.99999, -89.9999, 1e-7, -30.0000002])


@pytest.mark.parametrize("nside", [1, 2, 8, 32, 1024, 2**18])
def test_healpix_matches_astropy_healpix(nside):
    ahp = pytest.importorskip("astropy_healpix")
    rng = np.random.default_rng(nside)
    ra, dec = sky(rng, 50_000)
    ra, dec = np.r_[ra, EDGE_RA], np.r_[dec, EDGE_DEC]
    for order, f in (("nested", ang2pix_nest), ("ring", ang2pix_ring)):
        ref = ahp.HEALPix(nside=nside, order=order).lonlat_to_healpix(ra * u.deg, dec * u.deg)
        np.testing.assert_array_equal(f(nside, ra, dec), ref)


def test_healpix_properties_without_reference():
    rng = np.random.default_rng(7)
    ra, dec = sky(rng, 400_000)
    nest, ring = ang2pix_nest(4, ra, dec), ang2pix_ring(4, ra, dec)
    assert nest.min() >= 0 and nest.max() == 191 and ring.max() == 191
    # equal area: every pixel gets ~ n/192 points
    counts = np.bincount(nest, minlength=192)
    assert abs(counts - len(ra) / 192).max() < 6 * np.sqrt(len(ra) / 192)
    # both schemes define the same partition (a bijection between their indices)
    pairs = np.unique(np.column_stack([nest, ring]), axis=0)
    assert len(pairs) == 192 and len(np.unique(pairs[:, 0])) == 192 and len(np.unique(pairs[:, 1])) == 192
    # nside=1: base pixels coincide in both schemes
    np.testing.assert_array_equal(ang2pix_nest(1, ra, dec), ang2pix_ring(1, ra, dec))
    # nesting: the parent of a pixel at nside 8 is pixel // 4 at nside 4
    np.testing.assert_array_equal(ang2pix_nest(8, ra, dec) // 4, nest)
    with pytest.raises(ValueError, match="power of two"):
        ang2pix_nest(3, ra, dec)


def test_cone_pixels_cover_cone_samples():
    rng = np.random.default_rng(2)
    ra, dec = sky(rng, 300)
    r = 30.0 / 3600
    for a, d in zip(ra, dec):
        pix = set(cone_pixels(32, a, d, r).tolist())
        c = SkyCoord(a * u.deg, d * u.deg).directional_offset_by(
            rng.uniform(0, 360, 200) * u.deg, rng.uniform(0, r, 200) * u.deg)
        assert set(ang2pix_nest(32, c.ra.deg, c.dec.deg).tolist()) <= pix


# -- catalogs and cross-match ---------------------------------------------------------------------
def allwise_like(rng, n):
    ra, dec = sky(rng, n)
    return pd.DataFrame({
        "designation": [f"J{i:07d}" for i in range(n)], "ra": ra, "dec": dec,
        "w1mpro": rng.normal(14, 1, n), "w2mpro": rng.normal(13.5, 1, n), "w3mpro": rng.normal(11, 1, n),
        "w4mpro": rng.normal(8, 1, n), "w1sigmpro": 0.03, "j_m_2mass": rng.normal(15, 1, n),
    })


def objects_near(rng, cat, n_near, n_far, max_off_arcsec=3.0):
    idx = rng.choice(len(cat), n_near, replace=False)
    base = SkyCoord(cat["ra"].to_numpy()[idx] * u.deg, cat["dec"].to_numpy()[idx] * u.deg)
    off = base.directional_offset_by(rng.uniform(0, 360, n_near) * u.deg,
                                     rng.uniform(0, max_off_arcsec, n_near) * u.arcsec)
    fra, fdec = sky(rng, n_far)
    return pd.DataFrame({"oid": [f"ZTF{i:05d}" for i in range(n_near + n_far)],
                         "meanra": np.r_[off.ra.deg, fra], "meandec": np.r_[off.dec.deg, fdec]})


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    rng = np.random.default_rng(11)
    cat = allwise_like(rng, 60_000)
    # sources at the poles and across RA 0/360
    extra = pd.DataFrame({"designation": ["JNP", "JSP", "JW0", "JW1"], "ra": [10.0, 250.0, 359.99999, 0.00001],
                          "dec": [89.99999, -89.99999, 5.0, 5.0], "w1mpro": 10.0, "w2mpro": 9.0, "w3mpro": 8.0,
                          "w4mpro": 7.0, "w1sigmpro": 0.01, "j_m_2mass": 11.0})
    cat = pd.concat([cat, extra], ignore_index=True)
    d = tmp_path_factory.mktemp("cat")
    half = len(cat) // 2
    cat.iloc[:half].to_csv(d / "a.csv", index=False)
    cat.iloc[half:].to_parquet(d / "b.parquet", index=False)
    meta = build_catalog([d / "a.csv", d / "b.parquet"], d / "allwise", "ra", "dec", "designation", nside=8)
    return cat, d / "allwise", meta


def test_build_catalog_layout(catalog):
    cat, out, meta = catalog
    assert meta["n_rows"] == len(cat) and meta["kind"] == "allwise" and meta["name"] == "allwise"
    assert json.loads((out / "catalog.json").read_text()) == meta
    pix = ang2pix_nest(8, cat["ra"], cat["dec"])
    for p in (int(pix[0]), int(pix[-1])):
        part = pd.read_parquet(out / f"npix={p}" / "part.parquet")
        assert set(part["designation"]) == set(cat["designation"][pix == p])
    assert sum(meta["pixels"].values()) == len(cat)


def test_build_catalog_from_fits_and_errors(tmp_path):
    from astropy.table import Table

    rng = np.random.default_rng(3)
    ra, dec = sky(rng, 100)
    period = rng.uniform(0.3, 1, 100)
    Table({"ID": np.arange(100), "RA": ra, "DEC": dec, "cls": ["RRL"] * 100, "P": period}).write(
        tmp_path / "c.fits")
    meta = build_catalog(tmp_path / "c.fits", tmp_path / "vs", "RA", "DEC", "ID", nside=4, class_col="cls",
                         period_col="P")
    assert meta["kind"] == "generic" and meta["n_rows"] == 100
    objs = pd.DataFrame({"oid": ["a", "b"], "meanra": [ra[5], 1.0], "meandec": [dec[5], 1.0]})
    xm = crossmatch(objs, tmp_path / "vs", 1.0)
    assert xm.to_dict("records") == [{"oid": "a", "catid": "vs", "oid_catalog": "5", "dist": 0.0,
                                      "class_catalog": "RRL", "period": pytest.approx(period[5])}]
    with pytest.raises(FileExistsError):
        build_catalog(tmp_path / "c.fits", tmp_path / "vs", "RA", "DEC", "ID")
    with pytest.raises(KeyError, match="missing column"):
        build_catalog(tmp_path / "c.fits", tmp_path / "x", "ra", "DEC", "ID")
    pd.DataFrame({"id": [1, 2], "ra": [1.0, np.nan], "dec": [0.0, 0.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match="row 1"):
        build_catalog(tmp_path / "bad.csv", tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="not a catalog"):
        crossmatch(objs, tmp_path)


@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_crossmatch_nearest_matches_astropy(catalog, radius):
    cat, out, _ = catalog
    rng = np.random.default_rng(int(radius * 10))
    objs = objects_near(rng, cat, 3000, 500)
    objs = pd.concat([objs, pd.DataFrame({"oid": ["NP", "SP", "W0", "W1"], "meanra": [190.0, 70.0, 0.0002, 359.9998],
                                          "meandec": [89.9999, -89.9999, 5.0, 5.0]})], ignore_index=True)
    xm = crossmatch(objs, out, radius)
    assert list(xm.columns) == list(XMATCH_COLUMNS)
    c1 = SkyCoord(objs["meanra"].to_numpy() * u.deg, objs["meandec"].to_numpy() * u.deg)
    c2 = SkyCoord(cat["ra"].to_numpy() * u.deg, cat["dec"].to_numpy() * u.deg)
    idx, sep, _ = match_coordinates_sky(c1, c2)
    ok = sep.arcsec <= radius
    exp = dict(zip(objs["oid"][ok], cat["designation"].to_numpy()[idx[ok]]))
    assert dict(zip(xm["oid"], xm["oid_catalog"])) == exp
    assert {"NP", "SP", "W0", "W1"} <= set(xm["oid"])
    np.testing.assert_allclose(xm["dist"].to_numpy(), sep.arcsec[ok][np.argsort(objs["oid"][ok])][
        np.argsort(np.argsort(xm["oid"].to_numpy()))], atol=1e-6)
    assert (xm["catid"] == "allwise").all()


def test_crossmatch_all_within_radius(catalog):
    cat, out, _ = catalog
    objs = pd.DataFrame({"oid": ["x"], "meanra": [cat["ra"][0]], "meandec": [cat["dec"][0]]})
    big = 2 * 3600.0  # 2 degrees: several partitions, several sources
    xm = crossmatch(objs, out, big, nearest=False)
    c = SkyCoord(cat["ra"].to_numpy() * u.deg, cat["dec"].to_numpy() * u.deg)
    sep = c.separation(SkyCoord(cat["ra"][0] * u.deg, cat["dec"][0] * u.deg)).arcsec
    assert sorted(xm["oid_catalog"]) == sorted(cat["designation"][sep <= big])
    assert xm["dist"].is_monotonic_increasing and xm["oid_catalog"].iloc[0] == cat["designation"][0]


def test_crossmatch_tables_and_wise_metadata(catalog, tmp_path):
    cat, out, _ = catalog
    rng = np.random.default_rng(5)
    objs = objects_near(rng, cat, 200, 50, max_off_arcsec=0.8)
    objs.loc[3, "meanra"] = np.nan  # skipped, not an error
    t = crossmatch_tables(objs, out, 1.0)
    aw = t["allwise"]
    assert list(aw.columns) == list(ALLWISE_COLUMNS)
    assert set(aw["oid_catalog"]) == set(t["xmatch"]["oid_catalog"])
    src = cat.set_index("designation")
    np.testing.assert_allclose(aw["w2mpro"], src.loc[aw["oid_catalog"], "w2mpro"])
    assert aw["w2sigmpro"].isna().all()  # absent in the catalog
    with Store(f"sqlite:///{tmp_path / 's.db'}") as st:
        st.write(t)
        assert st.count("xmatch") == len(t["xmatch"]) and st.count("allwise") == len(aw)
    meta = wise_metadata(t["xmatch"], aw)
    assert list(meta.columns) == ["oid", "W1mag", "W2mag", "W3mag"]
    m = t["xmatch"].merge(cat, left_on="oid_catalog", right_on="designation")
    exp = dict(zip(m["oid"], m["w3mpro"]))
    assert dict(zip(meta["oid"], meta["W3mag"])) == pytest.approx(exp)


def test_wise_metadata_feeds_wise_color_family():
    from alerce.features.colors import WiseColorFamily

    xm = pd.DataFrame({"oid": ["a", "a", "b"], "catid": "allwise", "oid_catalog": ["J1", "J2", "J3"],
                       "dist": [0.9, 0.2, 0.5]})
    aw = pd.DataFrame({"oid_catalog": ["J1", "J2", "J3"], "w1mpro": [1.0, 2.0, 3.0], "w2mpro": [1.5, 2.5, 3.5],
                       "w3mpro": [0.5, 1.5, 2.5]})
    meta = wise_metadata(xm, aw).set_index("oid")
    assert meta.loc["a", "W1mag"] == 2.0  # nearest match
    assert WiseColorFamily().columns == ("W1mag", "W2mag", "W3mag")
    assert set(WiseColorFamily().columns) <= set(meta.columns)
    vz = aw.rename(columns={"w1mpro": "W1mag", "w2mpro": "W2mag", "w3mpro": "W3mag"})
    pd.testing.assert_frame_equal(wise_metadata(xm, vz), wise_metadata(xm, aw))


def test_main_catalog_cli(tmp_path, capsys):
    pd.DataFrame({"id": ["s1", "s2"], "ra": [1.0, 200.0], "dec": [2.0, -30.0]}).to_csv(tmp_path / "c.csv", index=False)
    assert main_catalog(["build", str(tmp_path / "c.csv"), "--out", str(tmp_path / "cat"), "--nside", "8"]) == 0
    assert "2 sources in 2 pixels" in capsys.readouterr().out
    assert main_catalog(["build", str(tmp_path / "c.csv"), "--out", str(tmp_path / "cat")]) == 2
    assert "exists" in capsys.readouterr().err


# -- user cross-match service ---------------------------------------------------------------------
@pytest.fixture
def user_store(tmp_path):
    rng = np.random.default_rng(21)
    ra, dec = sky(rng, 5000)
    ra = np.r_[ra, 0.00005, 359.99995, 77.0]
    dec = np.r_[dec, -3.0, -3.0, 89.99995]
    objects = pd.DataFrame({"oid": [f"ZTF{i:05d}" for i in range(len(ra))], "meanra": ra, "meandec": dec,
                            "ndet": rng.integers(1, 100, len(ra))})
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    with Store(url) as st:
        st.write({"object": objects})
    return url, objects


def test_match_user_catalog_matches_astropy(user_store, tmp_path):
    url, objects = user_store
    rng = np.random.default_rng(8)
    pick = rng.choice(len(objects), 300, replace=False)
    base = SkyCoord(objects["meanra"].to_numpy()[pick] * u.deg, objects["meandec"].to_numpy()[pick] * u.deg)
    off = base.directional_offset_by(rng.uniform(0, 360, 300) * u.deg, rng.uniform(0, 3, 300) * u.arcsec)
    fra, fdec = sky(rng, 100)
    users = pd.DataFrame({"id": np.arange(403), "ra": np.r_[off.ra.deg, fra, 359.9999, 0.0001, 200.0],
                          "dec": np.r_[off.dec.deg, fdec, -3.0, -3.0, 89.9999]})
    users.to_csv(tmp_path / "users.csv", index=False)
    out = match_user_catalog(tmp_path / "users.csv", url, 2.0)
    assert out["id"].tolist() == users["id"].tolist()
    c1 = SkyCoord(users["ra"].to_numpy() * u.deg, users["dec"].to_numpy() * u.deg)
    c2 = SkyCoord(objects["meanra"].to_numpy() * u.deg, objects["meandec"].to_numpy() * u.deg)
    idx, sep, _ = match_coordinates_sky(c1, c2)
    ok = sep.arcsec <= 2.0
    assert out["oid"].notna().to_numpy().tolist() == ok.tolist()
    assert out["oid"][ok].tolist() == objects["oid"].to_numpy()[idx[ok]].tolist()
    np.testing.assert_allclose(out["dist"][ok], sep.arcsec[ok], atol=1e-6)
    np.testing.assert_array_equal(out["ndet"][ok].to_numpy(int), objects["ndet"].to_numpy()[idx[ok]])
    assert ok[-3:].all()  # RA wrap and pole
    only = match_user_catalog(users, url, 2.0, keep_unmatched=False)
    assert len(only) == ok.sum()


def test_main_service_cli_and_errors(user_store, tmp_path, capsys):
    url, objects = user_store
    pd.DataFrame({"id": ["u1", "u2"], "ra": [objects["meanra"][0], 1.0],
                  "dec": [objects["meandec"][0], 1.0]}).to_csv(tmp_path / "u.csv", index=False)
    assert main_service(["--store", url, "--input", str(tmp_path / "u.csv"), "--radius", "2",
                         "--out", str(tmp_path / "o.csv")]) == 0
    got = pd.read_csv(tmp_path / "o.csv")
    assert got["oid"].iloc[0] == objects["oid"][0] and pd.isna(got["oid"].iloc[1])
    assert "1 of 2 sources matched" in capsys.readouterr().out
    pd.DataFrame({"name": ["u1"], "ra": [1.0], "dec": [1.0]}).to_csv(tmp_path / "bad.csv", index=False)
    assert main_service(["--store", url, "--input", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "lacks column" in capsys.readouterr().err
    with pytest.raises(ValueError, match="radius"):
        match_user_catalog(tmp_path / "u.csv", url, -1)
