"""Hierarchical random forest: estimator contract, taxonomy, imputation, bundles, pipeline rows."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_estimators_overwrite_params,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from alerce.classifiers.bundle import BundleError, load_bundle, save_bundle
from alerce.classifiers.lc import (
    HierarchicalRandomForest,
    classify_features,
    impute_features,
    probability_rows,
)
from alerce.classifiers.lc.preprocessing import FeatureImputer
from alerce.classifiers.outliers import GroupIsolationForest, score_outliers
from alerce.classifiers.taxonomy import CLASSIFIER_NAMES, DEFAULT_TAXONOMY, Taxonomy

CLASSES = DEFAULT_TAXONOMY.classes


def make_data(n=450, n_features=12, seed=0, signal=3.0):
    """Random features where feature 0/1 encode the class (learnable) plus NaN/inf noise."""
    rng = np.random.default_rng(seed)
    y = np.asarray([CLASSES[i % len(CLASSES)] for i in range(n)], dtype=object)
    rng.shuffle(y)
    code = np.asarray([CLASSES.index(c) for c in y], dtype=float)
    X = rng.normal(size=(n, n_features))
    X[:, 0] += signal * code
    X[:, 1] += signal * np.asarray([DEFAULT_TAXONOMY.group_names.index(DEFAULT_TAXONOMY.group_of(c))
                                    for c in y])
    X[rng.random(X.shape) < 0.05] = np.nan
    X[3, 4] = np.inf
    cols = [f"f{i}" for i in range(n_features - 2)] + ["Mean_1", "Mean_2"]
    index = pd.Index([f"ZTF{i:07d}" for i in range(n)], name="oid")
    return pd.DataFrame(X, columns=cols, index=index), y


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return HierarchicalRandomForest(n_estimators=15, random_state=0).fit(X, y)


# ---------------------------------------------------------------------------- taxonomy
def test_default_taxonomy_names_and_order():
    assert DEFAULT_TAXONOMY.group_names == ("Stochastic", "Periodic", "Transient")
    assert DEFAULT_TAXONOMY.classes_of("Stochastic") == ("AGN", "Blazar", "CV/Nova", "QSO", "YSO")
    assert DEFAULT_TAXONOMY.classes_of("Periodic") == ("CEP", "DSCT", "E", "LPV",
                                                       "Periodic-Other", "RRL")
    assert DEFAULT_TAXONOMY.classes_of("Transient") == ("SLSN", "SNII", "SNIa", "SNIbc")
    assert len(DEFAULT_TAXONOMY.classes) == 15
    assert DEFAULT_TAXONOMY.group_of("LPV") == "Periodic"


def test_taxonomy_json_round_trip_and_table_rows():
    again = Taxonomy.from_json(DEFAULT_TAXONOMY.to_json())
    assert again == DEFAULT_TAXONOMY
    rows = DEFAULT_TAXONOMY.table_rows()
    assert set(rows["classifier_name"]) == set(CLASSIFIER_NAMES.values())
    final = rows.set_index("classifier_name").loc["lc_classifier", "classes"]
    assert json.loads(final) == list(DEFAULT_TAXONOMY.classes)
    top = rows.set_index("classifier_name").loc["lc_classifier_top", "classes"]
    assert json.loads(top) == ["Stochastic", "Periodic", "Transient"]
    assert (rows["classifier_version"] == DEFAULT_TAXONOMY.version).all()


def test_taxonomy_rejects_bad_definitions():
    with pytest.raises(ValueError, match="appears in groups"):
        Taxonomy({"A": ["x", "y"], "B": ["y"]})
    with pytest.raises(ValueError, match="no classes"):
        Taxonomy({"A": []})
    with pytest.raises(ValueError, match="not in taxonomy"):
        DEFAULT_TAXONOMY.map_groups(["SNIa", "Kilonova"])


# ---------------------------------------------------------------------------- imputation
def test_imputation_matches_reference_rules():
    x = np.array([[1.0, np.nan, np.inf], [-np.inf, 2e32, 5.0]])
    out = impute_features(x)
    np.testing.assert_array_equal(out, [[1.0, -999.0, -999.0], [-999.0, 0.0, 5.0]])
    assert np.isnan(x[0, 1])  # input untouched


def test_imputer_selects_training_order_and_reports_missing():
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": [2.0, 3.0], "Mean_1": [9.0, 9.0]})
    imp = FeatureImputer(exclude=("Mean_1",)).fit(frame)
    shuffled = frame[["b", "Mean_1", "a"]].assign(extra=1.0)
    np.testing.assert_array_equal(imp.transform(shuffled), [[1.0, 2.0], [-999.0, 3.0]])
    with pytest.raises(ValueError, match=r"missing: \['b'\]"):
        imp.transform(frame[["a"]])
    lenient = FeatureImputer(on_missing="impute").fit(frame)
    np.testing.assert_array_equal(lenient.transform(frame[["a"]])[:, 1], [-999.0, -999.0])


# ---------------------------------------------------------------------------- estimator contract
def test_sklearn_parameter_checks():
    est = HierarchicalRandomForest(n_estimators=5)
    check_parameters_default_constructible("HRF", est)
    check_no_attributes_set_in_init("HRF", est)
    check_get_params_invariance("HRF", est)
    check_set_params("HRF", est)


def test_overwrite_params_check_on_taxonomy_data(data):
    # sklearn's check feeds integer labels; run it with our taxonomy via a numeric taxonomy
    tax = Taxonomy({"G0": ["0", "1"], "G1": ["2"]})
    check_estimators_overwrite_params("HRF", HierarchicalRandomForest(taxonomy=tax,
                                                                      n_estimators=5))


def test_sklearn_check_estimator_applicable_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # integer labels of sklearn's checks mapped onto a small numeric taxonomy
    tax = Taxonomy({"G0": ["0", "-1"], "G1": ["1"], "G2": ["2"]})
    not_applicable = {
        "check_dtype_object": "labels outside the taxonomy are rejected by design",
        "check_classifiers_classes": "labels outside the taxonomy are rejected by design",
    }
    check_estimator(HierarchicalRandomForest(taxonomy=tax, n_estimators=5, random_state=0),
                    expected_failed_checks=not_applicable)


def test_clone_and_get_set_params(fitted):
    est = clone(fitted)
    assert not hasattr(est, "top_")
    assert est.get_params() == fitted.get_params()
    est.set_params(n_estimators=7, max_features_stochastic=0.3)
    assert est.n_estimators == 7 and est.max_features_stochastic == 0.3
    assert fitted.n_estimators == 15


def test_fit_returns_self_and_attributes(data):
    X, y = data
    est = HierarchicalRandomForest(n_estimators=5, random_state=1)
    assert est.fit(X, y) is est
    assert list(est.feature_names_in_) == list(X.columns)
    assert est.n_features_in_ == X.shape[1]
    assert list(est.classes_) == list(CLASSES)
    assert sorted(est.groups_) == sorted(DEFAULT_TAXONOMY.group_names)
    assert est.top_.max_features == "sqrt"
    assert est.children_["Stochastic"].max_features == 0.2
    assert est.children_["Periodic"].max_features == "sqrt"
    assert all(f.n_estimators == 5 for f in [est.top_, *est.children_.values()])
    # ALeRCE drops Mean_1 / Mean_2 before the forests
    assert est.top_.n_features_in_ == X.shape[1] - 2


def test_predict_proba_is_top_times_child(fitted, data):
    X, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == (len(X), 15)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    h = fitted.predict_proba_hierarchical(X)
    for group in DEFAULT_TAXONOMY.group_names:
        child = h["children"][group]
        assert list(child.columns) == list(DEFAULT_TAXONOMY.classes_of(group))
        expected = h["top"][group].to_numpy()[:, None] * child.to_numpy()
        cols = [list(fitted.classes_).index(c) for c in child.columns]
        np.testing.assert_allclose(proba[:, cols], expected, atol=1e-12)
    # the same top probabilities as calling the top forest directly on imputed features
    direct = fitted.top_.predict_proba(impute_features(X.drop(columns=["Mean_1", "Mean_2"])))
    np.testing.assert_allclose(h["top"][list(fitted.top_.classes_)].to_numpy(), direct)
    assert list(h["probabilities"].index) == list(X.index)
    assert (fitted.predict(X) == h["class"].to_numpy()).all()


def test_learns_signal(data):
    X, y = data
    Xt, yt = make_data(n=300, seed=5)
    est = HierarchicalRandomForest(n_estimators=30, random_state=0).fit(X, y)
    acc = np.mean(est.predict(Xt) == yt)
    assert acc > 3 / 15  # chance is 1/15


def test_single_class_group_and_missing_group():
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    y = np.array(["SNIa"] * 20 + ["SNII"] * 20 + ["RRL"] * 20, dtype=object)
    est = HierarchicalRandomForest(n_estimators=5, random_state=0).fit(X, y)
    assert list(est.classes_) == ["RRL", "SNII", "SNIa"]
    p = est.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[:, 0], est.predict_proba_hierarchical(X)["top"]["Periodic"])


def test_duplicate_oids_dropped_in_fit(data):
    X, y = data
    dup = pd.concat([X.iloc[:100], X.iloc[:10]])
    ydup = np.concatenate([y[:100], np.roll(y[:10], 1)])  # conflicting labels for the copies
    a = HierarchicalRandomForest(n_estimators=5, random_state=0).fit(dup, ydup)
    b = HierarchicalRandomForest(n_estimators=5, random_state=0).fit(X.iloc[:100], y[:100])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_rejects_unknown_labels_and_single_group():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="not in taxonomy"):
        HierarchicalRandomForest(n_estimators=2).fit(X, ["SNIa", "SNII", "foo", "RRL"])
    with pytest.raises(ValueError, match="two top-level groups"):
        HierarchicalRandomForest(n_estimators=2).fit(X, ["SNIa", "SNII", "SNIa", "SNII"])


def test_array_input_and_missing_columns(fitted, data):
    X, _ = data
    np.testing.assert_allclose(fitted.predict_proba(X.to_numpy()), fitted.predict_proba(X))
    with pytest.raises(ValueError, match="missing"):
        fitted.predict_proba(X.drop(columns=["f3"]))


# ---------------------------------------------------------------------------- bundles
def test_bundle_round_trip_identical_probabilities(tmp_path, fitted, data):
    X, y = data
    det = GroupIsolationForest(n_estimators=10, random_state=0).fit(
        X, DEFAULT_TAXONOMY.map_groups(y))
    save_bundle(tmp_path, {"classifier": fitted, "outliers": det},
                {"name": "lc_classifier", "version": "test_1"})
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["version"] == "test_1" and len(card["model_sha256"]) == 64
    assert "scikit-learn" in card["library_versions"]
    bundle = load_bundle(tmp_path)
    np.testing.assert_array_equal(bundle["classifier"].predict_proba(X), fitted.predict_proba(X))
    # the compact copy (what training bundles) predicts identically and drops the samplers
    small = tmp_path / "compact"
    save_bundle(small, {"classifier": fitted.compact()}, {"version": "c"})
    compact = load_bundle(small)["classifier"]
    assert not hasattr(compact.top_, "samplers_") and hasattr(fitted.top_, "samplers_")
    np.testing.assert_array_equal(compact.predict_proba(X), fitted.predict_proba(X))
    assert (small / "model.skops").stat().st_size < (tmp_path / "model.skops").stat().st_size
    pd.testing.assert_frame_equal(bundle["outliers"].score(X), det.score(X))


def test_bundle_refuses_tampered_file(tmp_path, fitted):
    save_bundle(tmp_path, {"classifier": fitted}, {"name": "x", "version": "1"})
    path = tmp_path / "model.skops"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="modified"):
        load_bundle(tmp_path)


class Sneaky:
    """A type no bundle may contain."""

    def __init__(self):
        self.payload = "rm -rf"


def test_bundle_refuses_unknown_type(tmp_path, fitted):
    import skops.io as sio

    with pytest.raises(BundleError, match="untrusted"):
        save_bundle(tmp_path / "a", {"classifier": fitted, "x": Sneaky()}, {"version": "1"})
    # a hand-made bundle whose card hash matches but which holds an unknown type
    folder = tmp_path / "b"
    save_bundle(folder, {"classifier": fitted}, {"version": "1"})
    sio.dump({"classifier": Sneaky()}, folder / "model.skops")
    card = json.loads((folder / "model_card.json").read_text())
    import hashlib

    card["model_sha256"] = hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()
    (folder / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(BundleError, match=r"untrusted type\(s\) \['test_lc_classifier.Sneaky'\]"):
        load_bundle(folder)


def test_bundle_missing_and_corrupt(tmp_path):
    with pytest.raises(BundleError, match="model card not found"):
        load_bundle(tmp_path)
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(BundleError, match="invalid JSON"):
        load_bundle(tmp_path)
    assert not zipfile.is_zipfile(tmp_path / "model_card.json")


# ---------------------------------------------------------------------------- pipeline rows
def test_probability_rows_dense_ranking():
    wide = pd.DataFrame({"A": [0.5, 0.2], "B": [0.3, 0.2], "C": [0.2, 0.6]},
                        index=pd.Index(["o1", "o2"], name="oid"))
    rows = probability_rows(wide, "clf", "v1")
    got = rows.set_index(["oid", "class_name"])["ranking"].to_dict()
    assert got == {("o1", "A"): 1, ("o1", "B"): 2, ("o1", "C"): 3,
                   ("o2", "A"): 2, ("o2", "B"): 2, ("o2", "C"): 1}


def test_classify_features_rows(fitted, data):
    X, _ = data
    rows = classify_features(X.iloc[:20], model=fitted)
    assert list(rows.columns) == ["oid", "class_name", "classifier_name", "classifier_version",
                                  "probability", "ranking"]
    counts = rows.groupby("classifier_name").size().to_dict()
    assert counts == {"lc_classifier": 20 * 15, "lc_classifier_top": 20 * 3,
                      "lc_classifier_stochastic": 20 * 5, "lc_classifier_periodic": 20 * 6,
                      "lc_classifier_transient": 20 * 4}
    sums = rows.groupby(["oid", "classifier_name"])["probability"].sum()
    np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-12)
    # ranking is the dense rank of -probability within (oid, classifier_name)
    expected = rows.groupby(["oid", "classifier_name"])["probability"].rank(
        method="dense", ascending=False).astype(int)
    assert (rows["ranking"] == expected).all()
    final = rows[rows["classifier_name"] == "lc_classifier"]
    best = final[final["ranking"] == 1].drop_duplicates("oid").set_index("oid")["class_name"]
    assert (best.loc[X.index[:20]].to_numpy() == fitted.predict(X.iloc[:20])).all()
    assert (rows["classifier_version"] == DEFAULT_TAXONOMY.version).all()


def test_classify_features_empty(fitted):
    rows = classify_features(pd.DataFrame(), model=fitted)
    assert len(rows) == 0 and "ranking" in rows.columns


# ---------------------------------------------------------------------------- outliers
def test_outlier_scores_flag_far_points(data):
    X, y = data
    X = X.fillna(0.0).replace(np.inf, 0.0)  # imputed -999 values are outliers themselves
    groups = DEFAULT_TAXONOMY.map_groups(y)
    det = GroupIsolationForest(n_estimators=50, random_state=0).fit(X, groups)
    far = X.iloc[:5].copy()
    far[:] = 1e6
    far.index = pd.Index([f"FAR{i}" for i in range(5)], name="oid")
    scored = score_outliers(pd.concat([X.iloc[:50], far]), model=det)
    assert list(scored.columns) == ["oid", "detector_name", "detector_version", "category", "score"]
    assert len(scored) == 55 * 3
    assert set(scored["category"]) == set(DEFAULT_TAXONOMY.group_names)
    per_obj = scored.groupby("oid")["score"].min()
    assert per_obj.loc[far.index].min() > per_obj.loc[X.index[:50]].max()
    # scores equal sklearn's own IsolationForest scoring of the imputed features
    ref = -det.detectors_["Periodic"].score_samples(
        impute_features(X.iloc[:50].to_numpy()))
    got = scored[scored["category"] == "Periodic"]["score"].to_numpy()[:50]
    np.testing.assert_allclose(got, ref)


def test_custom_taxonomy_survives_bundle(tmp_path):
    tax = Taxonomy({"A": ["a1", "a2"], "B": ["b1"]}, version="x")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.array(["a1", "a2", "b1"] * 20)
    est = HierarchicalRandomForest(taxonomy=tax, n_estimators=3, random_state=0).fit(X, y)
    save_bundle(tmp_path, {"classifier": est}, {"version": "1"})
    again = load_bundle(tmp_path)["classifier"]
    assert again.taxonomy == tax and again.taxonomy.group_of("b1") == "B"
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))


# ---------------------------------------------------------------------------- training data
def test_long_table_conversion():
    from alerce.classifiers.lc.data import detections_from_long_table

    table = pd.DataFrame({"ZTFID": ["a", "a", "b", "b"], "mjd": [1.0, 2.0, 3.0, 4.0],
                          "band": ["g", "R", "r", "u"], "mag": [18.0, 18.5, 19.0, 20.0],
                          "magerr": [0.1, 0.2, 0.3, 0.4]})
    pos = pd.DataFrame({"ra": [10.0], "dec": [-5.0]}, index=pd.Index(["a"]))
    det = detections_from_long_table(table, oid="ZTFID", positions=pos)
    assert det["fid"].tolist() == [1, 2, 2]  # u band dropped
    assert det["magpsf"].tolist() == [18.0, 18.5, 19.0]
    assert det["sigmapsf"].tolist() == [0.1, 0.2, 0.3]
    assert det["candid"].is_unique and (det["rb"] == 1).all() and (det["isdiffpos"] == 1).all()
    assert not det["corrected"].any()
    assert det["ra"].tolist() == [10.0, 10.0, 0.0] and det["dec"].tolist() == [-5.0, -5.0, 0.0]


def test_sexagesimal_matches_astropy():
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from alerce.classifiers.lc.data import _sexagesimal

    ra = pd.Series(["13:45:25.21", "00:02:36.0", "23:59:59.9"])
    dec = pd.Series(["+26:25:27.2", "-00:30:00.5", "-45:00:01"])
    got_ra, got_dec = _sexagesimal(ra, dec)
    ref = SkyCoord(ra.tolist(), dec.tolist(), unit=(u.hourangle, u.deg))
    np.testing.assert_allclose(got_ra, ref.ra.deg, atol=1e-9)
    np.testing.assert_allclose(got_dec, ref.dec.deg, atol=1e-9)


def test_packed_forest_equals_sklearn_bit_for_bit():
    """The numba forest kernel against scikit-learn's own predict_proba (missing values too)."""
    from sklearn.ensemble import RandomForestClassifier

    from alerce.classifiers.lc.fastforest import PackedForest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    X[rng.random(X.shape) < 0.1] = np.nan         # trees learn where missing values go
    y = (np.nan_to_num(X[:, 0]) + rng.normal(0, 0.5, 400) > 0).astype(int) + (X[:, 1] > 1)
    forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(X, y)
    Xq = rng.normal(size=(300, 6)) * rng.choice([1.0, 1e3], size=(300, 6))
    Xq[rng.random(Xq.shape) < 0.2] = np.nan
    Xq[:5] = -999.0
    np.testing.assert_array_equal(PackedForest(forest).predict_proba(Xq), forest.predict_proba(Xq))
    with pytest.raises(ValueError, match="expects 6 features"):
        PackedForest(forest).predict_proba(Xq[:, :3])


def test_hierarchical_model_uses_the_packed_forests_with_identical_results():
    from alerce.classifiers.lc import load_default_model
    from alerce.classifiers.lc.pipeline import resolve_model

    try:
        est = resolve_model(load_default_model())[0]
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(1)
    n_features = est.top_.n_features_in_
    Xt = rng.normal(size=(200, n_features)) * rng.choice([1.0, 10.0, 1e3], size=(200, n_features))
    Xt[rng.random(Xt.shape) < 0.2] = -999.0
    from alerce.classifiers.lc.model import _predict_forest

    for forest in [est.top_] + [c for c in est.children_.values() if c is not None]:
        np.testing.assert_array_equal(_predict_forest(forest, Xt), forest.predict_proba(Xt))


@pytest.mark.parametrize("max_features", [1.0, 0.5])
def test_packed_isolation_forest_equals_sklearn_bit_for_bit(max_features):
    """Outlier scores through the numba kernel against IsolationForest.score_samples."""
    from sklearn.ensemble import IsolationForest

    from alerce.classifiers.lc.fastforest import PackedIsolationForest, packed

    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 7))
    X[rng.random(X.shape) < 0.05] = np.nan
    forest = IsolationForest(n_estimators=40, max_samples=200, max_features=max_features,
                             random_state=1).fit(X)
    Xq = rng.normal(size=(300, 7)) * rng.choice([1.0, 30.0], size=(300, 7))
    Xq[rng.random(Xq.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(PackedIsolationForest(forest).score_samples(Xq), forest.score_samples(Xq))
    assert isinstance(packed(forest), PackedIsolationForest) and packed(forest) is packed(forest)
    single = IsolationForest(n_estimators=3, random_state=0).fit(X[:1])  # one sample: sklearn's score 1
    np.testing.assert_array_equal(PackedIsolationForest(single).score_samples(Xq), single.score_samples(Xq))


def test_default_outlier_scores_use_the_packed_forests_with_identical_values():
    from alerce.classifiers.lc import load_default_model

    try:
        bundle = load_default_model()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    detector = bundle.objects.get("outliers")
    assert detector is not None, "the default bundle ships outlier detectors"
    from alerce.classifiers.outliers import _score_samples

    rng = np.random.default_rng(2)
    n = next(iter(detector.detectors_.values())).n_features_in_
    Xt = rng.normal(size=(150, n)) * rng.choice([1.0, 10.0, 1e3], size=(150, n))
    for forest in detector.detectors_.values():
        np.testing.assert_array_equal(_score_samples(forest, Xt), forest.score_samples(Xt))
