"""Post-rules of the stamp classifier and the classify_alerts pipeline function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from alerce.classifiers.stamp import CLASSES, asteroid_mask, classify_alerts, sn_rejected_mask  # noqa: E402
from alerce.classifiers.stamp.pipeline import probability_rows  # noqa: E402
from alerce.classifiers.stamp.rules import near_ps1_star_mask, negative_isdiffpos_mask  # noqa: E402
from alerce.classifiers.stamp.simulation import simulate_alerts  # noqa: E402


def test_asteroid_rule():
    alerts = pd.DataFrame({"ssdistnr": [-999.0, np.nan, 0.0, 2.5, -1.0, 30.0]})
    assert asteroid_mask(alerts).tolist() == [False, False, True, True, False, True]
    assert asteroid_mask(pd.DataFrame({"x": [1]})).tolist() == [False]   # column absent


def test_isdiffpos_and_ps1_star_rules():
    alerts = pd.DataFrame({
        "isdiffpos": np.array([1, -1, 1, 1, 1], dtype=np.int8),
        "sgscore1": [0.9, 0.1, 0.9, 0.4, -999.0],
        "distpsnr1": [0.5, 0.5, 1.5, 0.2, -999.0],
    })
    assert negative_isdiffpos_mask(alerts).tolist() == [False, True, False, False, False]
    assert near_ps1_star_mask(alerts).tolist() == [True, False, False, False, False]


def test_sn_rejection_only_when_sn_is_argmax():
    alerts = pd.DataFrame({
        "isdiffpos": np.array([-1, -1, 1, 1], dtype=np.int8),
        "sgscore1": [0.0, 0.0, 0.9, 0.0], "distpsnr1": [5.0, 5.0, 0.3, 5.0],
    })
    probs = np.full((4, 5), 0.1)
    probs[[0, 2, 3], CLASSES.index("SN")] = 0.6     # SN argmax
    probs[1, CLASSES.index("VS")] = 0.6             # negative but VS -> kept
    assert sn_rejected_mask(alerts, probs).tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="probability rows"):
        sn_rejected_mask(alerts, probs[:2])


class _FixedModel:
    """Stand-in model returning preset probabilities (tests the pipeline glue, not the CNN)."""

    model_version = "test-1"

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=float)
        self.seen = None

    def predict_proba(self, inputs):
        self.seen = inputs
        return self.probs[: len(inputs)]


def _sim(n=2, seed=0):
    return simulate_alerts({"SN": n}, seed, encode=True)


def test_classify_alerts_applies_rules_and_ranks():
    sim = _sim(4)
    alerts = sim.alerts.copy()
    alerts["ssdistnr"] = [-999.0, 1.0, -999.0, -999.0]           # row 1: asteroid rule
    alerts["isdiffpos"] = np.array([1, 1, -1, 1], dtype=np.int8)  # row 2: negative SN -> dropped
    alerts["sgscore1"], alerts["distpsnr1"] = 0.1, 4.0
    stamps = sim.stamps.drop(index=3)                              # row 3: no stamps -> dropped
    sn = np.array([0.1, 0.6, 0.1, 0.1, 0.1])
    model = _FixedModel([sn, sn, sn])
    out, dropped = classify_alerts(alerts, stamps, model, return_dropped=True)
    assert list(out.columns) == ["oid", "candid", "class_name", "classifier_name",
                                 "classifier_version", "probability", "ranking"]
    assert len(model.seen) == 2                                   # rows 0 and 2 reach the model
    assert sorted(out["candid"].unique()) == sorted(alerts["candid"].iloc[[0, 1]])
    ast = out[out["candid"] == alerts["candid"].iloc[1]].set_index("class_name")
    assert ast.loc["asteroid", "probability"] == 1.0 and ast["probability"].sum() == 1.0
    assert ast.loc["asteroid", "ranking"] == 1
    first = out[out["candid"] == alerts["candid"].iloc[0]].set_index("class_name")
    assert first.loc["SN", "ranking"] == 1 and sorted(first["ranking"]) == [1, 2, 3, 4, 5]
    assert (out["classifier_name"] == "stamp_classifier").all()
    assert (out["classifier_version"] == "test-1").all()
    reasons = dict(zip(dropped["candid"], dropped["reason"]))
    assert "no stamps" in reasons[alerts["candid"].iloc[3]]
    assert "SN argmax rejected" in reasons[alerts["candid"].iloc[2]]


def test_probability_rows_ranking_ties_follow_class_order():
    rows = probability_rows(np.array(["a"]), np.array([1]), np.array([[0.0, 0.0, 0.0, 1.0, 0.0]]),
                            "v")
    assert rows["ranking"].tolist() == [2, 3, 4, 1, 5]
    assert rows["class_name"].tolist() == list(CLASSES)


def test_classify_empty_inputs():
    sim = _sim(1)
    out = classify_alerts(sim.alerts.iloc[:0], sim.stamps.iloc[:0], _FixedModel([]))
    assert len(out) == 0 and "probability" in out
