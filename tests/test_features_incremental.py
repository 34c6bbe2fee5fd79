"""Reusing the stored features of unchanged bands (alerce.features.incremental)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alerce.features.base import PackedLightCurves
from alerce.features.extractor import default_extractor, extract_features
from alerce.features.incremental import StoredFeatures, previous_band_features, same_band_points
from alerce.features.pack import pack_lightcurves
from alerce.features.preprocess import preprocess_detections
from alerce.features.step import feature_rows

VERSION = "test 1"


def _light_curves(n_obj: int = 12, n_per_band: int = 14, seed: int = 4) -> pd.DataFrame:
    """Corrected detections in g and r, every detection clean (rb 0.9, small errors)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_obj):
        for fid in (1, 2):
            mjd = np.sort(rng.uniform(58000, 58300, n_per_band)) + 0.1 * fid
            mag = 18 + 0.5 * np.sin(mjd / (3 + k)) + rng.normal(0, 0.05, n_per_band)
            rows.append(pd.DataFrame({
                "oid": f"ZTF{k:05d}", "fid": fid, "mjd": mjd, "magpsf": mag,
                "sigmapsf": rng.uniform(0.03, 0.1, n_per_band), "magpsf_corr": mag - 0.3,
                "sigmapsf_corr": 0.05, "sigmapsf_corr_ext": 0.06, "corrected": k % 3 == 0,
                "isdiffpos": 1.0, "rb": 0.9, "ra": 10.0 + k, "dec": 20.0,
            }))
    return pd.concat(rows, ignore_index=True)


def _objects(det: pd.DataFrame) -> pd.DataFrame:
    flags = det.groupby("oid")["corrected"].all()
    return pd.DataFrame({"oid": flags.index, "corrected": flags.to_numpy()})


def _packed(det: pd.DataFrame, objects: pd.DataFrame | None = None) -> PackedLightCurves:
    return pack_lightcurves(preprocess_detections(det, objects))


def _band_local_names(extractor) -> list[str]:
    return [n for fam in extractor.families if fam.band_local for n in fam.names]


def test_without_bands_drops_exactly_the_masked_blocks():
    lc = _packed(_light_curves(n_obj=3, n_per_band=7))
    drop = np.array([[True, False], [False, True], [False, False]])
    reduced = lc.without_bands(drop)
    counts = np.diff(lc.band_offsets, axis=1)
    assert (np.diff(reduced.band_offsets, axis=1) == np.where(drop, 0, counts)).all()
    assert reduced.band_offsets[0, 0] == 0 and reduced.band_offsets[-1, -1] == len(reduced.time)
    for i in range(len(lc)):
        for b in range(len(lc.bands)):
            if drop[i, b]:
                continue
            old = slice(lc.band_offsets[i, b], lc.band_offsets[i, b + 1])
            new = slice(reduced.band_offsets[i, b], reduced.band_offsets[i, b + 1])
            for name in ("time", "mag", "err", "mag_raw", "err_raw", "rb"):
                np.testing.assert_array_equal(getattr(reduced, name)[new], getattr(lc, name)[old])
    with pytest.raises(ValueError, match="shape"):
        lc.without_bands(np.zeros((2, 2), dtype=bool))


def test_band_local_families_give_the_same_values_on_the_kept_bands():
    """The property the reuse relies on: a band-local family's band-b columns do not depend on
    the other band."""
    lc = _packed(_light_curves(n_obj=4))
    drop = np.zeros((len(lc), 2), dtype=bool)
    drop[:, 0] = True  # remove every g band
    reduced = lc.without_bands(drop)
    for fam in default_extractor().families:
        if not fam.band_local:
            continue
        full, part = fam.compute(lc, {}), fam.compute(reduced, {})
        r_cols = [j for j, n in enumerate(fam.names) if n.endswith("_2")]
        np.testing.assert_array_equal(part[:, r_cols], full[:, r_cols], err_msg=type(fam).__name__)


def test_same_band_points_compares_counts_and_values():
    old = _light_curves(n_obj=4)
    new = old.copy()
    # object 1, band g: one new point; object 2, band r: one magnitude changed; object 3 absent
    extra = new[(new["oid"] == "ZTF00001") & (new["fid"] == 1)].iloc[[-1]].assign(mjd=58400.0)
    new = pd.concat([new, extra], ignore_index=True)
    changed = (new["oid"] == "ZTF00002") & (new["fid"] == 2) & (new["mjd"] == new["mjd"][(new["oid"] == "ZTF00002") & (new["fid"] == 2)].max())
    new.loc[changed, "magpsf"] += 1e-9
    same = same_band_points(_packed(new), _packed(old[old["oid"] != "ZTF00003"]))
    expected = np.array([[True, True], [False, True], [True, False], [False, False]])
    np.testing.assert_array_equal(same, expected)


def test_a_flip_of_the_magnitude_choice_changes_every_band():
    det = _light_curves(n_obj=3)
    objects = _objects(det)
    flipped = objects.assign(corrected=~objects["corrected"])
    same = same_band_points(_packed(det, flipped), _packed(det, objects))
    assert not same.any()  # corrected and raw magnitudes differ by 0.3 everywhere


def test_previous_band_features_needs_every_value_of_a_band():
    names = ["SPM_A_1", "SPM_t0_1", "SPM_A_2", "SPM_t0_2"]
    rows = pd.DataFrame({
        "oid": ["a", "a", "a", "a", "b", "b", "b", "c"],
        "name": ["SPM_A", "SPM_t0", "SPM_A", "SPM_t0", "SPM_A", "SPM_t0", "SPM_A", "SPM_A"],
        "fid": [1, 1, 2, 2, 1, 1, 2, 1],
        "value": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        "version": [VERSION] * 7 + ["other"],
    })
    wide, complete = previous_band_features(rows, names, VERSION, np.array(["a", "b", "c", "d"], dtype=object), (1, 2))
    np.testing.assert_array_equal(complete, [[True, True], [True, False], [False, False], [False, False]])
    assert wide.loc["a", "SPM_A_2"] == 3.0 and np.isnan(wide.loc["a", "SPM_t0_1"])  # a NULL is a value
    assert wide.loc["b", "SPM_A_2"] == 7.0


def _stored(old: pd.DataFrame, features: pd.DataFrame) -> StoredFeatures:
    return StoredFeatures(old, _objects(old), feature_rows(features, VERSION), VERSION)


def test_extract_features_with_stored_bands_equals_a_full_computation():
    extractor = default_extractor()
    old = _light_curves()
    before = extract_features(old, metadata=_objects(old).set_index("oid"), extractor=extractor)
    # a new g detection for half of the objects
    new_rows = old[(old["fid"] == 1) & (old["oid"] < "ZTF00006")].groupby("oid").tail(1).assign(
        mjd=lambda f: f["mjd"] + 5.0, magpsf=lambda f: f["magpsf"] + 0.2)
    new = pd.concat([old, new_rows], ignore_index=True)
    meta = _objects(new).set_index("oid")
    full = extract_features(new, metadata=meta, extractor=extractor)
    assert full.attrs["reused_bands"] == 0
    again = extract_features(new, metadata=meta, extractor=extractor, stored=_stored(old, before))
    # r of every object and g of the objects without a new point: 12 + 6 bands
    assert again.attrs["reused_bands"] == 18
    pd.testing.assert_frame_equal(again, full, check_exact=True)


def test_reused_values_come_from_the_store_and_only_for_unchanged_bands():
    extractor = default_extractor()
    old = _light_curves(n_obj=4)
    before = extract_features(old, metadata=_objects(old).set_index("oid"), extractor=extractor)
    names = _band_local_names(extractor)
    marked = before.copy()
    marked[names] = -12345.0  # stand-in values: they show where the stored features were taken
    new_rows = old[(old["fid"] == 1) & (old["oid"] == "ZTF00000")].tail(1).assign(mjd=58500.0)
    new = pd.concat([old, new_rows], ignore_index=True)
    got = extract_features(new, metadata=_objects(new).set_index("oid"), extractor=extractor,
                           stored=_stored(old, marked))
    g_names = [n for n in names if n.endswith("_1")]
    r_names = [n for n in names if n.endswith("_2")]
    assert (got.loc["ZTF00000", g_names] != -12345.0).all()  # new point: recomputed
    assert (got.loc["ZTF00000", r_names] == -12345.0).all()
    assert (got.drop(index="ZTF00000")[names] == -12345.0).all().all()
    other = [c for c in got.columns if c not in names]
    assert not (got[other] == -12345.0).any().any()  # other families always run
    # another feature version: nothing is reused
    stale = StoredFeatures(old, _objects(old), feature_rows(marked, "other"), VERSION)
    stale = extract_features(new, metadata=_objects(new).set_index("oid"), extractor=extractor, stored=stale)
    assert stale.attrs["reused_bands"] == 0
