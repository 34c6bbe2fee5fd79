"""The shipped default bundle: loads, classifies real ZTF alerts, beats chance on simulations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared

pytest.importorskip("torch")

from alerce.classifiers.stamp import (  # noqa: E402
    CLASSES,
    FEATURE_NAMES,
    classify_alerts,
    default_model_dir,
    load_default_model,
)
from alerce.classifiers.stamp.simulation import simulate_alerts  # noqa: E402
from alerce.classifiers.stamp.training import build_inputs, main  # noqa: E402


def test_bundle_is_small_and_documented():
    d = default_model_dir()
    weights, card_path = d / "model.safetensors", d / "model_card.json"
    assert weights.is_file() and card_path.is_file()
    assert weights.stat().st_size < 5_000_000
    card = json.loads(card_path.read_text())
    assert card["name"] == "stamp_classifier" and card["classes"] == list(CLASSES)
    assert card["features"] == list(FEATURE_NAMES)
    assert set(card["training_data"]) >= {"simulated"}
    assert "balanced_accuracy" in card["metrics"]["simulated"]


def test_default_model_is_cached():
    assert load_default_model() is load_default_model()


def test_default_model_beats_chance_on_held_out_simulations():
    # seed 12345 is not one used to train the bundle (training uses --seed and --seed + 1)
    sim = simulate_alerts(40, 12345, oid_prefix="ZTFheldout")
    model = load_default_model()
    inputs, labels, _ = build_inputs(sim.alerts, sim.raw, sim.labels)
    from sklearn.metrics import balanced_accuracy_score

    assert balanced_accuracy_score(labels, model.predict(inputs)) > 0.5


def test_default_bundle_classifies_real_ztf_alerts():
    from alerce.io import read_alerts

    batch = read_alerts(str(shared("ztf", "alerts", "kowalski_v3.3_20200202")))
    batch = batch.concat([batch, read_alerts(str(shared("ztf", "alerts", "ampel_v3.0_20180819")))])
    assert len(batch.stamps) > 0
    out, dropped = classify_alerts(batch.alerts, batch.stamps, return_dropped=True)
    n_out = out["candid"].nunique()
    assert n_out + dropped["candid"].nunique() == batch.alerts["candid"].nunique()
    assert n_out > 0
    sums = out.groupby("candid")["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    ranks = out.sort_values(["candid", "ranking"])["ranking"].to_numpy().reshape(-1, 5)
    assert (ranks == np.arange(1, 6)).all()
    assert set(out["class_name"]) == set(CLASSES)
    assert out["classifier_version"].iloc[0] == load_default_model().model_version
    # dropped rows only for the documented reasons
    assert dropped["reason"].str.contains("SN argmax rejected|no stamps|cutout").all()


def test_cli_trains_a_tiny_bundle(tmp_path):
    out = tmp_path / "bundle"
    rc = main(["--out", str(out), "--n-sim", "6", "--n-sim-test", "4", "--epochs", "1",
               "--no-real", "--threads", "1", "--max-minutes", "2"])
    assert rc == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["training_data"]["simulated"]["train_counts"]["SN"] == 6
    assert (out / "evaluation" / "confusion_simulated.png").stat().st_size > 1000
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    assert metrics["simulated"]["n"] == 20
    assert np.asarray(metrics["simulated"]["confusion_matrix"]).sum() == 20
