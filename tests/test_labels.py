"""Label mapping from several catalogues with priority resolution."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import shared

from alerce.classifiers.labels import (
    ALERCE_RULES,
    BTS_RULES,
    TNS_RULES,
    map_classes,
    map_labels,
    read_alerce_labels,
    read_bts_labels,
    read_superphot_labels,
)
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY


def test_bts_type_rules():
    raw = ["SN Ia", "SN Ia-91T", "SN Iax", "SN II", "SN IIn", "SN IIb", "SN Ib", "SN Ic-BL",
           "SN Ib/c", "SN Ibn", "SLSN-I", "SLSN-II", "nova", "TDE", "LBV", "ILRT"]
    got = map_classes(raw, BTS_RULES).tolist()
    assert got == ["SNIa", "SNIa", "SNIa", "SNII", "SNII", "SNII", "SNIbc", "SNIbc", "SNIbc",
                   "SNIbc", "SLSN", "SLSN", "CV/Nova", None, None, None]


def test_alerce_legacy_names():
    got = map_classes(["Ceph", "EA", "EB/EW", "RSCVn", "SNIIn", "SNIIb", "ZZ", "TDE", "LPV"],
                      ALERCE_RULES).tolist()
    assert got == ["CEP", "E", "E", "Periodic-Other", "SNII", "SNII", None, None, "LPV"]


def test_tns_rules_targets_in_taxonomy():
    targets = {t for _, t in TNS_RULES if t is not None}
    assert targets <= set(DEFAULT_TAXONOMY.classes)
    assert map_classes(["CV", "AGN", "SN", "Varstar"], TNS_RULES).tolist() == [
        "CV/Nova", "AGN", None, None]


def test_rules_must_target_taxonomy():
    with pytest.raises(ValueError, match="not in taxonomy"):
        map_classes(["x"], [("x", "Kilonova")])


def test_priority_resolution():
    frames = {
        "tns": pd.DataFrame({"oid": ["a", "b", "c"], "class": ["SN II", "SN Ia", "CV"]}),
        "bts": pd.DataFrame({"oid": ["a", "b", "d"], "class": ["SN Ia", "SN Ia", "LBV"]}),
        "alerce": pd.DataFrame({"oid": ["c"], "class": ["EA"]}),
    }
    out = map_labels(frames, priority=["alerce", "bts", "tns"]).set_index("oid")
    assert out.loc["a", "class"] == "SNIa" and out.loc["a", "source"] == "bts"
    assert bool(out.loc["a", "conflict"]) and out.loc["a", "n_sources"] == 2
    assert out.loc["b", "class"] == "SNIa" and not bool(out.loc["b", "conflict"])
    assert out.loc["c", "class"] == "E" and out.loc["c", "source"] == "alerce"
    assert out.loc["c", "original_class"] == "EA"
    assert "d" not in out.index  # LBV maps to nothing
    flipped = map_labels(frames, priority=["tns", "bts", "alerce"]).set_index("oid")
    assert flipped.loc["a", "class"] == "SNII" and flipped.loc["c", "class"] == "CV/Nova"


def test_bad_frames():
    with pytest.raises(ValueError, match="lacks column"):
        map_labels({"bts": pd.DataFrame({"oid": ["a"]})})
    with pytest.raises(ValueError, match="no mapping rules"):
        map_labels({"mine": pd.DataFrame({"oid": ["a"], "class": ["x"]})})
    assert len(map_labels({})) == 0


def test_real_catalogues_merge():
    bts = read_bts_labels(shared("lightcurves", "bts_2710_labeled", "bts_catalog_2021-04-02.csv"))
    sp = read_superphot_labels(shared("lightcurves", "superphot_labels", "training_set.csv"))
    al = read_alerce_labels(shared("golden", "alerce_lc_classifier", "data_examples",
                                   "2000_labels.csv"))
    out = map_labels({"alerce": al, "bts": bts, "superphot": sp})
    assert out["oid"].is_unique
    assert set(out["class"]) <= set(DEFAULT_TAXONOMY.classes)
    # independent count: BTS SN Ia* objects not labelled by ALeRCE must be SNIa from BTS
    ia = set(bts.loc[bts["class"].str.startswith("SN Ia"), "oid"]) - set(al["oid"])
    got = out.set_index("oid").loc[sorted(ia)]
    assert (got["class"] == "SNIa").all() and (got["source"] == "bts").all()
    # the 2000 ALeRCE labels all survive with their own class
    mine = out[out["source"] == "alerce"]
    assert len(mine) == al["oid"].nunique()
    assert set(out["source"]) == {"alerce", "bts", "superphot"}
