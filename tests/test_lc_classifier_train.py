"""End-to-end training / evaluation on a few hundred objects, and the shipped default bundle."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.classifiers.bundle import load_bundle
from alerce.classifiers.lc import classify_features
from alerce.classifiers.lc.evaluate import (
    classification_metrics,
    evaluate_main,
    recall_vs_magnitude,
)
from alerce.classifiers.lc.pipeline import DEFAULT_MODEL_DIR, load_default_model
from alerce.classifiers.lc.train import assemble, main, train_lc_classifier
from alerce.classifiers.outliers import score_outliers
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY


def test_metrics_against_hand_counts():
    y_true = ["A", "A", "A", "B", "B", "C"]
    y_pred = ["A", "A", "B", "B", "C", "C"]
    m = classification_metrics(y_true, y_pred, ["A", "B", "C"])
    # recalls: A 2/3, B 1/2, C 1/1
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["per_class"]["B"]["recall"] == pytest.approx(0.5)
    # precisions: A 2/2, B 1/2, C 1/2
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert m["confusion_matrix_normalized"][0] == pytest.approx([2 / 3, 1 / 3, 0])


def test_recall_vs_magnitude_bins():
    tab = recall_vs_magnitude(["a", "a", "b", "b"], ["a", "b", "b", "b"], [15.5, 15.7, 18.2, 30],
                              bins=(15, 16, 17, 19))
    assert tab["n"].tolist() == [2, 0, 1]
    assert tab["recall"].iloc[0] == 0.5 and np.isnan(tab["recall"].iloc[1])
    assert tab["recall"].iloc[2] == 1.0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("lc_bundle")
    det, nd, labels = assemble(n_sim=330, seed=3, bts_max_per_class=25, include_periodic=True)
    result = train_lc_classifier(labels, det, nd, out, n_estimators=40, seed=3, test_size=0.3,
                                 version="test_small")
    return result, out, labels


def test_end_to_end_beats_chance(trained):
    result, out, labels = trained
    m = result.metrics
    chance = 1 / 15
    assert m["all"]["n"] == len(result.test_oids)
    assert m["simulated"]["balanced_accuracy"] > 3 * chance
    assert m["all"]["top"]["balanced_accuracy"] > 1 / 3 + 0.15
    assert not set(result.train_oids) & set(result.test_oids)
    for name in ("metrics.json", "predictions.csv", "confusion_matrix_all.png",
                 "recall_vs_magnitude.png", "recall_vs_magnitude.csv"):
        assert (out / "report" / name).is_file(), name
    pred = pd.read_csv(out / "report" / "predictions.csv")
    assert set(pred["oid"]) == set(result.test_oids)


def test_real_bts_reported_separately(trained):
    result, out, labels = trained
    if "bts" not in set(labels["source"]):
        pytest.skip("BTS light curves not available")
    m = result.metrics
    assert "bts" in m and "simulated" in m
    assert m["bts"]["n"] + m["simulated"]["n"] + m.get("alerce_history", {"n": 0})["n"] \
        == m["all"]["n"]
    pred = pd.read_csv(out / "report" / "predictions.csv")
    bts = pred[pred["source"] == "bts"]
    # independent recomputation of the BTS-only balanced accuracy
    recalls = (bts["true"] == bts["pred"]).groupby(bts["true"]).mean()
    assert m["bts"]["balanced_accuracy"] == pytest.approx(recalls.mean())
    card = json.loads((out / "model_card.json").read_text())
    assert set(card["heldout_real_oids"]) == set(bts["oid"])


def test_bundle_card_and_pipeline(trained):
    result, out, labels = trained
    bundle = load_bundle(out)
    card = bundle.card
    assert card["version"] == "test_small"
    assert card["taxonomy"] == DEFAULT_TAXONOMY.to_dict()
    assert card["features"] == list(result.model.feature_names_in_)
    counts = card["training_data"]["all_counts"]
    assert sum(sum(v.values()) for v in counts.values()) == len(result.train_oids) + len(
        result.test_oids)
    assert set(counts["simulated"]) <= set(DEFAULT_TAXONOMY.classes)
    assert sum(sum(v.values()) for v in card["training_data"]["train_counts"].values()) == len(
        result.train_oids)
    assert "balanced_accuracy" in card["metrics_heldout"]["all"]
    feats = pd.DataFrame(np.nan, index=pd.Index(["o1", "o2"], name="oid"),
                         columns=card["features"])
    rows = classify_features(feats, model=bundle)
    assert set(rows["classifier_version"]) == {"test_small"}
    assert len(rows) == 2 * (15 + 3 + 5 + 6 + 4)
    scores = score_outliers(feats, model=bundle)
    assert len(scores) == 2 * 3 and np.isfinite(scores["score"]).all()


def test_evaluate_cli(trained, tmp_path, capsys):
    result, out, labels = trained
    assert evaluate_main(["--model", str(out), "--n-sim", "90", "--seed", "77", "--no-bts",
                          "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["simulated"]["n"] > 30
    assert "balanced_accuracy" in capsys.readouterr().out


def test_train_cli_rejects_missing_out():
    with pytest.raises(SystemExit):
        main([])


def test_default_bundle_on_alerce_golden_features():
    if not (DEFAULT_MODEL_DIR / "model_card.json").is_file():
        pytest.skip(f"default bundle not built in {DEFAULT_MODEL_DIR}")
    base = shared("golden", "alerce_lc_classifier", "data_examples")
    feats = pd.read_csv(base / "100_objects_features.csv").set_index("objectId")
    feats.index.name = "oid"
    labels = pd.read_csv(base / "100_objects_labels.csv").set_index("objectId")["classALeRCE"]
    bundle = load_default_model()
    assert load_default_model() is bundle  # cached
    rows = classify_features(feats)
    top = rows[(rows["classifier_name"] == "lc_classifier_top") & (rows["ranking"] == 1)]
    top = top.drop_duplicates("oid").set_index("oid")["class_name"]
    true_group = pd.Series(DEFAULT_TAXONOMY.map_groups(labels.reindex(top.index)), index=top.index)
    # ALeRCE's own features of real periodic/stochastic objects: top level beats chance (1/3)
    assert np.mean(top == true_group) > 1 / 3
    assert len(rows) == len(feats) * 33


def test_default_bundle_on_alerce_supernovae(tmp_path, capsys):
    if not (DEFAULT_MODEL_DIR / "model_card.json").is_file():
        pytest.skip(f"default bundle not built in {DEFAULT_MODEL_DIR}")
    shared("golden", "alerce_lc_classifier", "data_examples", "30_sne_detections_corr.csv")
    out = tmp_path / "ev"
    assert evaluate_main(["--model", str(DEFAULT_MODEL_DIR), "--n-sim", "0", "--no-bts",
                          "--out", str(out)]) == 0
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred["source"]) == {"alerce_sne"} and len(pred) >= 25
    # real ALeRCE supernovae (with non-detections, never trained on): the top level says
    # Transient far more often than chance
    assert np.mean(pred["pred_group"] == "Transient") > 1 / 3
    assert np.mean(pred["true"] == pred["pred"]) > 1 / 15
    assert "alerce_sne" in capsys.readouterr().out
