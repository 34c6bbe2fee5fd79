"""Feature framework: preprocessing, packing, Extractor, step rows, metadata/colour families."""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SHARED_DATA, shared

from alerce.features import Extractor, FeatureFamily
from alerce.features.colors import ColorFamily, WiseColorFamily
from alerce.features.extractor import default_extractor, extract_features
from alerce.features.other import MetadataFamily, icrs_to_galactic
from alerce.features.pack import pack_lightcurves
from alerce.features.preprocess import preprocess_detections, preprocess_non_detections
from alerce.features.step import feature_rows


def _random_detections(n_obj=40, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_obj):
        n = int(rng.integers(0, 30))
        rows.append(pd.DataFrame({
            "oid": f"ZTF{k:05d}",
            "fid": rng.choice([1, 2, 3], n),
            "mjd": rng.uniform(58000, 59000, n),
            "magpsf": rng.normal(18, 1, n),
            "sigmapsf": rng.uniform(0.01, 0.2, n),
            "isdiffpos": rng.choice([-1.0, 1.0], n),
            "rb": rng.uniform(0, 1, n),
            "ra": rng.uniform(0, 360, n),
            "dec": rng.uniform(-30, 80, n),
        }))
    det = pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=3)
    return det.reset_index(drop=True)


# ---------------------------------------------------------------- packing


def test_pack_round_trip_matches_pandas_groupby():
    det = _random_detections()
    nd = det.sample(frac=0.7, random_state=5)[["oid", "fid", "mjd"]].assign(
        diffmaglim=lambda d: d["mjd"] % 3 + 18)
    # a non-detection of an object without detections is dropped
    nd = pd.concat([nd, pd.DataFrame({"oid": ["ZZZ"], "fid": [1], "mjd": [1.0], "diffmaglim": [20.]})])
    lc = pack_lightcurves(det, nd)
    expected_oids = np.sort(det["oid"].unique())
    assert list(lc.oids) == list(expected_oids)
    assert lc.band_offsets.shape == (len(expected_oids), 3)
    assert lc.band_offsets[0, 0] == 0 and lc.band_offsets[-1, -1] == len(lc.time)
    assert np.all(np.diff(lc.band_offsets.ravel()) >= 0)
    gb = {k: g.sort_values("mjd") for k, g in det[det.fid.isin([1, 2])].groupby(["oid", "fid"])}
    gnd = {k: g.sort_values("mjd") for k, g in nd.groupby(["oid", "fid"])}
    for i, oid in enumerate(lc.oids):
        for b, fid in enumerate((1, 2)):
            s, e = lc.band_offsets[i, b], lc.band_offsets[i, b + 1]
            ref = gb.get((oid, fid))
            if ref is None:
                assert e == s
                continue
            np.testing.assert_array_equal(lc.time[s:e], ref["mjd"].to_numpy())
            np.testing.assert_array_equal(lc.mag[s:e], ref["magpsf"].to_numpy())
            np.testing.assert_array_equal(lc.err[s:e], ref["sigmapsf"].to_numpy())
            np.testing.assert_array_equal(lc.isdiffpos[s:e], ref["isdiffpos"].to_numpy())
            s, e = lc.nd_band_offsets[i, b], lc.nd_band_offsets[i, b + 1]
            ref = gnd.get((oid, fid))
            n_ref = 0 if ref is None else len(ref)
            assert e - s == n_ref
            if n_ref:
                np.testing.assert_array_equal(lc.nd_diffmaglim[s:e], ref["diffmaglim"].to_numpy())


def test_pack_empty_and_metadata():
    empty = pd.DataFrame({"oid": pd.Series([], dtype=object), "fid": [], "mjd": [], "magpsf": []})
    lc = pack_lightcurves(empty)
    assert len(lc) == 0 and lc.band_offsets.shape == (0, 3)
    det = _random_detections(5)
    meta = pd.DataFrame({"oid": ["ZTF00003", "ZTF00001", "nope"], "W1mag": [10.0, 11.0, 12.0]})
    lc = pack_lightcurves(det, None, metadata=meta)
    assert list(lc.metadata.index) == list(lc.oids)
    w1 = lc.metadata["W1mag"]
    assert w1["ZTF00001"] == 11.0 and w1["ZTF00003"] == 10.0 and np.isnan(w1["ZTF00000"])
    with pytest.raises(KeyError, match="magpsf"):
        pack_lightcurves(det.drop(columns="magpsf"))


# ---------------------------------------------------------------- preprocessing


def _corrected_frame():
    base = dict(fid=1, magpsf=18.0, sigmapsf=0.1, magpsf_corr=17.0, sigmapsf_corr=0.05,
                sigmapsf_corr_ext=0.07, rb=0.9, ra=10.0, dec=20.0, isdiffpos=1.0, corrected=True)
    rows = [dict(base, oid="A", mjd=58000.0 + k) for k in range(7)]
    rows += [dict(base, oid="B", mjd=58000.0 + k, corrected=(k > 0)) for k in range(7)]
    rows += [dict(base, oid="C", mjd=58000.0 + k) for k in range(5)]  # too few
    return pd.DataFrame(rows)


def test_preprocess_rules():
    det = _corrected_frame()
    out = preprocess_detections(det)
    assert set(out.oid) == {"A", "B"}
    a, b = out[out.oid == "A"], out[out.oid == "B"]
    # corrected object -> magpsf_corr and the *extended* error; B is not (one uncorrected det)
    assert (a.magpsf_ml == 17.0).all() and (a.sigmapsf_ml == 0.07).all()
    assert (b.magpsf_ml == 18.0).all() and (b.sigmapsf_ml == 0.1).all()
    # batch rule: the objects table decides
    out2 = preprocess_detections(det, objects=pd.DataFrame({"oid": ["B"], "corrected": [True]}))
    assert (out2[out2.oid == "B"].magpsf_ml == 17.0).all()
    assert (out2[out2.oid == "A"].magpsf_ml == 18.0).all()  # A absent from objects -> uncorrected

    bad = det[det.oid == "A"].copy()
    bad.loc[bad.index[0], "rb"] = 0.5                 # bogus
    bad.loc[bad.index[1], "sigmapsf_corr_ext"] = 100  # sentinel error
    bad.loc[bad.index[2], "magpsf_corr"] = np.inf     # inf -> NaN -> dropped
    dup = bad.iloc[[3]].assign(magpsf_corr=99.0)      # duplicate (oid, mjd): first kept
    out = preprocess_detections(pd.concat([bad, dup]), min_detections=1)
    assert len(out) == 4 and 99.0 not in out.magpsf_ml.to_numpy()
    assert out.mjd.is_monotonic_increasing
    assert len(preprocess_detections(pd.concat([bad, dup]))) == 0  # 4 < 6
    with pytest.raises(KeyError, match="rb"):
        preprocess_detections(det.drop(columns="rb"))


def test_preprocess_non_detections_dedupe():
    nd = pd.DataFrame({"oid": ["A", "A", "A", "A"], "fid": [1, 1, 2, 1],
                       "mjd": [1.0, 1.0000001, 1.0, 2.0], "diffmaglim": [20, 21, 19, np.nan]})
    out = preprocess_non_detections(nd)
    assert len(out) == 2 and list(out.diffmaglim) == [20, 19]


# ---------------------------------------------------------------- Extractor


class _Const(FeatureFamily):
    required = ()

    def __init__(self, name, value, depends=()):
        self._name, self.value, self.depends, self.calls = name, value, tuple(depends), []

    @property
    def names(self):
        return [self._name]

    def compute(self, lc, context):
        self.calls.append(sorted(context))
        for dep in self.depends:
            assert dep in context
        extra = sum(context[d] for d in self.depends) if self.depends else 0.0
        return np.full((len(lc), 1), self.value) + np.asarray(extra).reshape(-1, 1)


def _tiny_lc():
    return pack_lightcurves(pd.DataFrame({"oid": ["x", "y"], "fid": [1, 2], "mjd": [1.0, 2.0],
                                          "magpsf": [18.0, 19.0]}))


def test_extractor_dependency_order_and_columns():
    c = _Const("c", 1.0, depends=("b",))
    b = _Const("b", 10.0, depends=("a",))
    a = _Const("a", 100.0)
    ex = Extractor([c, b, a])
    assert ex.names == ["c", "b", "a"]
    assert [f.names[0] for f in ex.order()] == ["a", "b", "c"]
    out = ex.compute(_tiny_lc())
    assert list(out.columns) == ["c", "b", "a"] and list(out.index) == ["x", "y"]
    np.testing.assert_array_equal(out["c"], 111.0)
    assert c.calls[0] == ["a", "b"]


def test_extractor_errors_and_context():
    with pytest.raises(ValueError, match="cycle"):
        Extractor([_Const("a", 1, ("b",)), _Const("b", 1, ("a",))]).order()
    with pytest.raises(ValueError, match="depends on 'zz'"):
        Extractor([_Const("a", 1, ("zz",))]).compute(_tiny_lc())
    with pytest.raises(ValueError, match="produced by both"):
        Extractor([_Const("a", 1), _Const("a", 2)])
    out = Extractor([_Const("a", 1, ("zz",))]).compute(_tiny_lc(), context={"zz": [5.0, 6.0]})
    np.testing.assert_array_equal(out["a"], [6.0, 7.0])
    with pytest.raises(ValueError, match="shape"):
        Extractor([_Const("a", 1)]).compute(_tiny_lc(), context={"q": [1.0]})


def test_custom_family_example_runs(monkeypatch):
    # imported under a real module name: numba's on-disk cache of the example's kernel records its
    # module and re-imports it when the cache is loaded (a runpy namespace cannot be re-imported,
    # so a second run of the suite failed on the cache the first run wrote)
    path = ROOT / "examples" / "custom_feature_family.py"
    spec = importlib.util.spec_from_file_location("custom_feature_family", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    mod = vars(module)
    out = mod["demo"]()
    assert out.shape[0] == 2
    np.testing.assert_allclose(out["range_ratio_1"], 1.0)  # both are max - min of the same mags
    assert (out["det_rate_1"] > 0).all()


# ---------------------------------------------------------------- families


def test_metadata_family_matches_astropy():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(7)
    ra, dec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    lon, lat = icrs_to_galactic(ra, dec)
    gal = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
    np.testing.assert_allclose(lat, gal.b.deg, atol=1e-8)
    dl = (lon - gal.l.deg + 180) % 360 - 180
    assert np.max(np.abs(dl * np.cos(np.radians(lat)))) < 1e-8

    det = _random_detections(8)
    det["sgscore1"] = 0.25
    lc = pack_lightcurves(det)
    out = MetadataFamily().compute(lc, {})
    grp = det[det.fid.isin([1, 2])].groupby("oid")
    np.testing.assert_allclose(out[:, 0], 0.25)
    np.testing.assert_allclose(out[:, 1], grp.rb.median().reindex(lc.oids))
    ref = SkyCoord(ra=grp.ra.mean().reindex(lc.oids).to_numpy() * u.deg,
                   dec=grp.dec.mean().reindex(lc.oids).to_numpy() * u.deg).galactic
    np.testing.assert_allclose(out[:, 2], ref.b.deg, atol=1e-8)


def test_color_and_wise_families_vs_pandas():
    det = _random_detections(30)
    det["magpsf_ml"] = det["magpsf"] - 0.5 * (det.index % 2 == 0)
    det["sigmapsf_ml"] = det["sigmapsf"]
    meta = pd.DataFrame({"oid": det.oid.unique()})
    meta["W1mag"], meta["W2mag"], meta["W3mag"] = 12.0, 11.5, np.where(meta.index % 3, 9.0, np.nan)
    lc = pack_lightcurves(det, metadata=meta)
    colors = ColorFamily().compute(lc, {})
    wise = WiseColorFamily().compute(lc, {})
    g = det[det.fid == 1].groupby("oid")
    r = det[det.fid == 2].groupby("oid")

    def ref(x):
        return x.reindex(lc.oids).to_numpy().copy()

    np.testing.assert_allclose(colors[:, 0], ref(g.magpsf.min() - r.magpsf.min()))
    np.testing.assert_allclose(colors[:, 2], ref(g.magpsf.mean() - r.magpsf.mean()))
    corr = ref(g.magpsf_ml.min() - r.magpsf_ml.min())
    corr[corr == colors[:, 0]] = np.nan
    np.testing.assert_allclose(colors[:, 1], corr)
    w = meta.set_index("oid").reindex(lc.oids)
    np.testing.assert_allclose(wise[:, 0], 0.5)
    np.testing.assert_allclose(wise[:, 1], w.W2mag - w.W3mag)
    np.testing.assert_allclose(wise[:, 5], ref(r.magpsf_ml.mean()) - w.W3mag)
    # without AllWISE columns everything is NaN
    assert np.isnan(WiseColorFamily().compute(pack_lightcurves(det), {})).all()


# ---------------------------------------------------------------- feature table rows


def test_feature_rows_fid_convention():
    cols = ["Amplitude_1", "Amplitude_2", "Multiband_period", "PPE", "Power_rate_1/2",
            "Power_rate_2", "Power_rate_3", "g-r_max", "W1-W2", "g-W2", "gal_b", "rb",
            "sgscore1", "Harmonics_mag_3_2", "SPM_tau_rise_1", "iqr_1"]
    wide = pd.DataFrame([np.arange(len(cols), dtype=float)], columns=cols, index=["o1"])
    rows = feature_rows(wide, "1.0").set_index("value")
    expect = {
        0: ("Amplitude", 1), 1: ("Amplitude", 2), 2: ("Multiband_period", 12), 3: ("PPE", 12),
        4: ("Power_rate_1/2", 12), 5: ("Power_rate_2", 12), 6: ("Power_rate_3", 12),
        7: ("g-r_max", 12), 8: ("W1-W2", 0), 9: ("g-W2", 0), 10: ("gal_b", 0), 11: ("rb", 0),
        12: ("sgscore1", 0), 13: ("Harmonics_mag_3", 2), 14: ("SPM_tau_rise", 1), 15: ("iqr", 1),
    }
    for value, (name, fid) in expect.items():
        assert (rows.loc[float(value), "name"], rows.loc[float(value), "fid"]) == (name, fid)
    assert (rows["version"] == "1.0").all() and (rows["oid"] == "o1").all()


# ---------------------------------------------------------------- hostile light curves


def _hostile_frames():
    rng = np.random.default_rng(11)
    cases = {
        "one_point": (np.array([58000.0]), np.array([18.0]), np.array([0.1])),
        "constant": (np.arange(20.0) + 58000, np.full(20, 18.0), np.full(20, 0.1)),
        "duplicate_times": (np.full(15, 58000.0), rng.normal(18, 0.1, 15), np.full(15, 0.1)),
        "nan_inf_err": (np.arange(12.0) + 58000, rng.normal(18, 0.3, 12),
                        np.array([np.nan, np.inf, 0.0] * 4)),
        "zero_err": (np.arange(10.0) + 58000, rng.normal(18, 0.3, 10), np.zeros(10)),
        "long": (np.sort(rng.uniform(58000, 59500, 10_000)), rng.normal(18, 0.5, 10_000),
                 rng.uniform(0.01, 0.2, 10_000)),
        "two_points": (np.array([58000.0, 58000.5]), np.array([18.0, 18.5]), np.array([.1, .1])),
    }
    # the light-curve project's problem curves join the synthetic ones when the data is there
    base = SHARED_DATA / "lightcurves" / "light_curve_test_data" / "from-issues"
    for path in sorted(base.glob("*/*.csv")):
        df = pd.read_csv(path)
        if "mag" in df.columns:
            mag, err = df["mag"].to_numpy(float), df["magerr"].to_numpy(float)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                mag = -2.5 * np.log10(df["flux"].to_numpy(float)) + 23.9
                err = 1.0857 * df["fluxerr"].to_numpy(float) / np.abs(df["flux"].to_numpy(float))
        cases[f"{path.parent.name}/{path.name}"] = (df["time"].to_numpy(float), mag, err)
    frames = []
    for oid, (t, m, e) in cases.items():
        for fid in (1, 2):
            frames.append(pd.DataFrame({"oid": oid, "fid": fid, "mjd": t, "magpsf": m,
                                        "sigmapsf": e, "isdiffpos": 1.0, "rb": 0.9,
                                        "ra": 10.0, "dec": -5.0}))
    return pd.concat(frames, ignore_index=True)


def test_hostile_light_curves_give_nan_or_finite():
    det = _hostile_frames()
    nd = det.iloc[::7][["oid", "fid", "mjd"]].assign(diffmaglim=20.0)
    lc = pack_lightcurves(det, nd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ex = default_extractor()
        out = ex.compute(lc)
    assert out.shape == (len(lc), len(ex.names))
    assert not np.isinf(out.to_numpy()).any()
    # a one-point band has NaN where a minimum is not met, but its counts are defined
    one = out.loc["one_point"]
    assert one["n_det_1"] == 1 and one["first_mag_1"] == 18.0
    # the preprocessing removes bad errors / too short curves without raising
    pre = preprocess_detections(det)
    assert set(pre.oid) >= {"constant", "long"} and "one_point" not in set(pre.oid)


def test_extract_features_on_golden_sample():
    base = shared("golden", "alerce_lc_classifier", "examples_data")
    det = pd.read_parquet(base / "detections_sample.parquet")
    nd = pd.read_parquet(base / "non_detections_sample.parquet")
    obj = pd.read_parquet(base / "object_info_sample.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = extract_features(det, nd, obj)
    assert len(out) == obj.index.nunique() == 10
    assert out.index.name == "oid"
    assert (out["n_det_2"] >= 6).all() or (out["n_det_1"] >= 6).all()


def test_docs_list_every_default_feature():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        names = default_extractor().names
    text = (ROOT / "docs" / "features.md").read_text()
    missing = [n for n in names if f"`{n}`" not in text and f" {n}," not in text
               and f" {n}`" not in text]
    assert not missing, missing


def test_end_to_end_from_real_alerts():
    """Avro alerts -> AlertBatch -> correction -> features (178 columns, ALeRCE's row rule)."""
    path = shared("ztf", "alerts", "fink_v4.02_20231018")
    from alerce.correction import correct_lightcurves
    from alerce.io import read_alerts

    batch = read_alerts(str(path))
    corrected = correct_lightcurves(batch.detections, batch.non_detections)
    meta = corrected.objects.set_index("oid").join(batch.alerts.groupby("oid")["sgscore1"].last())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = extract_features(corrected.detections, corrected.non_detections, meta)
    assert out.shape[1] == len(default_extractor().names)
    clean = preprocess_detections(corrected.detections, meta.reset_index())
    assert set(out.index) == set(clean.oid)
    assert len(out) > 10
    np.testing.assert_allclose(out["sgscore1"], meta["sgscore1"].reindex(out.index))
    assert np.isfinite(out["n_det_1"].fillna(0)).all()
