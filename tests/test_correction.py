"""Tests of alerce.correction against ALeRCE's golden files and independent numpy formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.correction import (
    MAGSTATS_COLUMNS,
    OBJECT_COLUMNS,
    correct,
    correct_lightcurves,
    correct_magnitudes,
    flag_dubious,
    magstats,
    object_stats,
    stellar_flags,
)
from alerce.correction.constants import SHARPNR_MAX, SHARPNR_MIN

GOLDEN = ("golden", "alerce_lc_correction")
#: golden magstats name -> our magstat-table name
GOLDEN_MAGSTATS = {
    "magpsf_mean": "magmean", "magpsf_median": "magmedian", "magpsf_max": "magmax",
    "magpsf_min": "magmin", "magpsf_first": "magfirst", "magpsf_last": "maglast",
    "magpsf_corr_mean": "magmean_corr", "magpsf_corr_median": "magmedian_corr",
    "magpsf_corr_max": "magmax_corr", "magpsf_corr_min": "magmin_corr",
    "magpsf_corr_first": "magfirst_corr", "magpsf_corr_last": "maglast_corr",
    "first_mjd": "firstmjd", "last_mjd": "lastmjd",
}


def _golden(name: str) -> pd.DataFrame:
    return pd.read_parquet(shared(*GOLDEN, f"10_objects_{name}.parquet"))


def golden_detections() -> pd.DataFrame:
    """The raw golden detections in the AlertBatch layout (oid, mjd, mjdendref, isdiffpos +1/-1)."""
    d = _golden("detections").rename(columns={"objectId": "oid"})
    d["mjd"] = d["jd"] - 2400000.5
    d["mjdendref"] = d["jdendref"] - 2400000.5
    d["isdiffpos"] = np.where(d["isdiffpos"].isin(["t", "1"]), 1, -1).astype(np.int8)
    d["has_stamp"] = d["parent_candid"] == 0
    return d


def golden_non_detections() -> pd.DataFrame:
    n = _golden("non_detections").rename(columns={"objectId": "oid"})
    n["mjd"] = n["jd"] - 2400000.5
    return n


@pytest.fixture(scope="module")
def golden_corrected():
    ours = correct(golden_detections())
    ours["dubious"] = flag_dubious(ours)
    gold = _golden("corrected").rename(columns={"objectId": "oid"})
    merged = ours.merge(gold, on=["oid", "candid"], suffixes=("", "_gold"), validate="one_to_one")
    assert len(merged) == len(gold) == len(ours)
    return ours, merged


# ----------------------------------------------------------------------------------- golden
@pytest.mark.parametrize("column", ["magpsf_corr", "sigmapsf_corr", "sigmapsf_corr_ext"])
def test_corrected_magnitudes_match_golden(golden_corrected, column):
    _, m = golden_corrected
    ours, gold = m[column].to_numpy(), m[f"{column}_gold"].to_numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(gold))
    np.testing.assert_array_equal(ours == 100, gold == 100)
    ok = ~np.isnan(gold)
    assert ok.sum() > 1000
    np.testing.assert_allclose(ours[ok], gold[ok], rtol=0, atol=1e-5)


def test_corrected_and_dubious_flags_match_golden(golden_corrected):
    _, m = golden_corrected
    np.testing.assert_array_equal(m["corrected"].to_numpy(), m["corrected_gold"].to_numpy())
    np.testing.assert_array_equal(m["dubious"].to_numpy(), m["dubious_gold"].to_numpy())
    assert m["dubious"].sum() == 4  # the golden sample has dubious rows, so the check bites


def test_correction_independent_numpy(golden_corrected):
    """magpsf_corr = magnr - 2.5 log10(1 + s 10^(-0.4 (magpsf - magnr))), an algebraically different form."""
    _, m = golden_corrected
    rows = m[m["corrected"] & (m["magpsf_corr"] < 100)].head(50)
    magpsf = rows["magpsf"].to_numpy(np.float64)
    magnr = rows["magnr"].to_numpy(np.float64)
    s = rows["isdiffpos"].to_numpy(np.float64)
    expected = magnr - 2.5 * np.log10(1 + s * 10 ** (-0.4 * (magpsf - magnr)))
    np.testing.assert_allclose(rows["magpsf_corr"].to_numpy(), expected, atol=1e-9)
    # ext error: relative flux error of the difference scaled to the total flux
    ratio = 10 ** (-0.4 * (magpsf - expected))
    np.testing.assert_allclose(rows["sigmapsf_corr_ext"].to_numpy(), ratio * rows["sigmapsf"].to_numpy(np.float64),
                               atol=1e-9)


@pytest.fixture(scope="module")
def golden_magstats(golden_corrected):
    ours, _ = golden_corrected
    ms = magstats(ours, golden_non_detections()).set_index(["oid", "fid"])
    gold = _golden("magstats")
    gold.index = gold.index.set_names(["oid", "fid"])
    assert set(ms.index) == set(gold.index)
    return ms.loc[gold.index], gold, ours


def test_magstats_columns_are_the_magstat_table(golden_magstats):
    ms, _, _ = golden_magstats
    assert tuple(ms.reset_index().columns) == MAGSTATS_COLUMNS


@pytest.mark.parametrize("gold_col", sorted(GOLDEN_MAGSTATS))
def test_magstats_values_match_golden(golden_magstats, gold_col):
    ms, gold, _ = golden_magstats
    ours = ms[GOLDEN_MAGSTATS[gold_col]].to_numpy(np.float64)
    expected = gold[gold_col].to_numpy(np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(ours[ok], expected[ok], rtol=0, atol=1e-5)


@pytest.mark.parametrize("column", ["ndet", "ndubious", "corrected", "stellar"])
def test_magstats_counts_and_flags_match_golden(golden_magstats, column):
    ms, gold, _ = golden_magstats
    np.testing.assert_array_equal(ms[column].to_numpy(), gold[column].to_numpy())


def test_golden_stellar_columns_are_swapped(golden_magstats):
    """Golden stellarZTF/stellarPS1 are mislabelled (Gen-1 quirk); ours are labelled correctly."""
    _, gold, ours = golden_magstats
    first = ours.sort_values(["oid", "fid", "mjd", "candid"]).drop_duplicates(["oid", "fid"]).set_index(["oid", "fid"])
    first = first.loc[gold.index]
    flags = stellar_flags(first["distnr"], first["distpsnr1"], first["sgscore1"], first["chinr"], first["sharpnr"])
    np.testing.assert_array_equal(flags["stellarPS1"].to_numpy(), gold["stellarZTF"].to_numpy())
    np.testing.assert_array_equal(flags["stellarZTF"].to_numpy(), gold["stellarPS1"].to_numpy())
    np.testing.assert_array_equal(flags["nearZTF"].to_numpy(), gold["nearZTF"].to_numpy())
    np.testing.assert_array_equal(flags["nearPS1"].to_numpy(), gold["nearPS1"].to_numpy())
    # independent recomputation of the PS1 score test, straight from the first detections
    np.testing.assert_array_equal(gold["stellarZTF"].to_numpy(), first["sgscore1"].to_numpy() > 0.4)


def test_magstats_independent_numpy(golden_magstats):
    """magsigma (ddof=1), saturation rate and dm/dt recomputed with plain numpy for every band."""
    ms, _, ours = golden_magstats
    nd = golden_non_detections()
    for (oid, fid), row in ms.iterrows():
        band = ours[(ours["oid"] == oid) & (ours["fid"] == fid)].sort_values("mjd")
        mag = band["magpsf"].to_numpy(np.float64)
        sigma = np.std(mag, ddof=1) if len(mag) > 1 else np.nan
        np.testing.assert_allclose(row["magsigma"], sigma, atol=1e-9, equal_nan=True)
        corr = band.loc[band["corrected"], "magpsf_corr"].dropna().to_numpy()
        sat = np.mean(corr < 13.2) if len(corr) else np.nan
        np.testing.assert_allclose(row["saturation_rate"], sat, equal_nan=True)
        m1, s1, t1 = mag[0], band["sigmapsf"].to_numpy(np.float64)[0], band["mjd"].to_numpy()[0]
        best = None
        for _, j in nd[(nd["oid"] == oid) & (nd["fid"] == fid)].iterrows():
            dt = t1 - j["mjd"]
            if dt > 0.5:
                rate = (m1 + s1 - j["diffmaglim"]) / dt
                if best is None or rate < best[0]:
                    best = (rate, m1 - j["diffmaglim"], s1 - j["diffmaglim"], dt)
        got = row[["dmdt_first", "dm_first", "sigmadm_first", "dt_first"]].to_numpy(np.float64)
        if best is None:
            assert np.isnan(got).all()
        else:
            np.testing.assert_allclose(got, best, atol=1e-9)
    assert ms["dmdt_first"].notna().sum() >= 10


def test_correct_lightcurves_is_row_order_independent():
    dets, nd = golden_detections(), golden_non_detections()
    # add duplicated detections (a prv copy of an alert) and duplicated non-detections
    dup = dets[dets["has_stamp"]].head(20).copy()
    dup["has_stamp"] = False
    dup["parent_candid"] = 123
    dets = pd.concat([dets, dup], ignore_index=True)
    nd = pd.concat([nd, nd.head(30)], ignore_index=True)
    a = correct_lightcurves(dets, nd)
    b = correct_lightcurves(dets.sample(frac=1, random_state=7), nd.sample(frac=1, random_state=3))
    for name in ("detections", "non_detections", "magstats", "objects"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert len(a.detections) == len(golden_detections())
    assert a.detections["has_stamp"].sum() == golden_detections()["has_stamp"].sum()
    assert len(a.non_detections) == len(golden_non_detections())
    assert tuple(a.objects.columns) == OBJECT_COLUMNS
    assert len(a.objects) == 10 and len(a.magstats) == 16


def test_object_stats_on_golden():
    dets = golden_detections()
    res = correct_lightcurves(dets, golden_non_detections())
    obj = res.objects.set_index("oid")
    ms = res.magstats.set_index(["oid", "fid"])
    for oid, group in dets.groupby("oid"):
        row = obj.loc[oid]
        assert row["ndet"] == len(group)
        np.testing.assert_allclose(row["meanra"], group["ra"].mean(), atol=1e-12)
        dec = group["dec"].to_numpy()
        np.testing.assert_allclose(row["sigmadec"], np.std(dec, ddof=1) if len(dec) > 1 else np.nan,
                                   atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(row["deltajd"], np.ptp(group["mjd"].to_numpy()), atol=1e-9)
        assert row["diffpos"] == bool((group["isdiffpos"] > 0).all())
        assert row["reference_change"] == bool(group["mjdendref"].max() > group["mjd"].min())
        if (oid, 1) in ms.index and (oid, 2) in ms.index:
            np.testing.assert_allclose(row["g_r_mean"], ms.loc[(oid, 1), "magmean"] - ms.loc[(oid, 2), "magmean"])
            np.testing.assert_allclose(row["g_r_max"], group.loc[group.fid == 1, "magpsf"].min()
                                       - group.loc[group.fid == 2, "magpsf"].min(), atol=1e-6)
        else:
            assert np.isnan(row["g_r_mean"]) and np.isnan(row["g_r_max_corr"])
        assert row["stellar"] == bool(ms.loc[oid, "stellar"].all())


# ----------------------------------------------------------------------------------- units
def test_correct_magnitudes_edge_cases():
    # rows: normal, negative total flux, negative radicand, magnr sentinel, not corrected, magpsf sentinel
    magpsf = np.array([18.0, 15.0, 18.0, 18.0, 18.0, -999.0])
    sigmapsf = np.array([0.1, 0.05, 0.01, 0.1, 0.1, 0.1])
    magnr = np.array([17.0, 16.0, 15.0, -999.0, 17.0, 17.0])
    sigmagnr = np.array([0.02, 0.02, 0.05, 0.02, 0.02, 0.02])
    sign = np.array([1, -1, 1, 1, 1, 1])
    corr = np.array([True, True, True, True, False, True])
    mag, sig, ext = correct_magnitudes(magpsf, sigmapsf, magnr, sigmagnr, sign, corr)
    fr, fd = 10 ** (-0.4 * 17.0), 10 ** (-0.4 * 18.0)
    np.testing.assert_allclose(mag[0], -2.5 * np.log10(fr + fd))
    np.testing.assert_allclose(sig[0], np.sqrt((fd * 0.1) ** 2 - (fr * 0.02) ** 2) / (fr + fd))
    np.testing.assert_allclose(ext[0], fd * 0.1 / (fr + fd))
    assert (mag[1], sig[1], ext[1]) == (100.0, 100.0, 100.0)
    assert sig[2] == 100.0 and mag[2] < 15.0 and 0 < ext[2] < 0.01
    for i in (3, 4, 5):
        assert np.isnan([mag[i], sig[i], ext[i]]).all()


def test_correct_accepts_ztf_strings_and_flags_distance():
    det = pd.DataFrame({
        "magpsf": [18.0, 18.0, 18.0], "sigmapsf": [0.1] * 3, "isdiffpos": ["t", "f", "0"],
        "distnr": [0.5, 2.0, np.nan], "magnr": [17.0] * 3, "sigmagnr": [0.01] * 3,
    })
    out = correct(det)
    assert out["isdiffpos"].tolist() == [1, -1, -1]
    assert out["corrected"].tolist() == [True, False, False]
    assert np.isfinite(out["magpsf_corr"][0]) and out["magpsf_corr"][1:].isna().all()
    assert det["isdiffpos"].tolist() == ["t", "f", "0"]  # input untouched


def test_missing_columns_give_clear_error():
    with pytest.raises(ValueError, match="missing required column.*magnr"):
        correct(pd.DataFrame({"magpsf": [1.0], "sigmapsf": [0.1], "isdiffpos": [1], "distnr": [0.1],
                              "sigmagnr": [0.1]}))


def test_dubious_uses_min_candid_not_min_mjd():
    # The smallest candid has the LATER mjd: Gen-1 uses candid, so its corrected=False drives the flag.
    det = pd.DataFrame({
        "oid": ["A", "A", "A"], "fid": [1, 1, 1], "candid": [10, 20, 30], "mjd": [5.0, 1.0, 2.0],
        "isdiffpos": [1, 1, -1], "corrected": [False, True, False],
    })
    assert flag_dubious(det).tolist() == [False, True, True]
    # independent: first by candid -> False; rows differing from it -> dubious; negative & uncorrected -> dubious
    det2 = det.assign(corrected=[True, True, False])
    assert flag_dubious(det2).tolist() == [False, False, True]


def _gen2_buggy_stellar_ztf(chinr, sharpnr):
    """ALeRCE Gen-2 ``is_stellar`` sharp check, as written there: ``(MIN < sharpnr) < MAX``."""
    return (chinr < 2) & ((SHARPNR_MIN < sharpnr).astype(float) < SHARPNR_MAX)


def test_stellar_sharp_range_is_gen1_not_gen2_bug():
    # a star on its reference source with no PS1 counterpart: ZTF test decides
    chinr = np.array([0.5, 0.5])
    sharpnr = np.array([0.05, -0.5])  # in range (stellar) / far out of range (not stellar)
    flags = stellar_flags(np.array([0.3, 0.3]), np.array([np.nan, np.nan]), np.array([np.nan, np.nan]),
                          chinr, sharpnr)
    assert flags["stellar"].tolist() == [True, False]
    assert flags["stellarZTF"].tolist() == [True, False]
    # the Gen-2 expression gets both of them wrong
    assert _gen2_buggy_stellar_ztf(chinr, sharpnr).tolist() == [False, True]


def test_near_ps1_guard_rejects_negative_sentinel():
    # distpsnr1 = -999 means "no PS1 match": nearPS1 must be False, so the ZTF test decides
    flags = stellar_flags([0.3], [-999.0], [0.9], [5.0], [0.0])
    assert not flags["nearPS1"][0] and not flags["stellar"][0]
    flags = stellar_flags([0.3], [0.2], [0.9], [5.0], [0.0])
    assert flags["nearPS1"][0] and flags["stellar"][0]


def test_magstats_ps1_frame_and_saturation():
    det = pd.DataFrame({
        "oid": ["A"] * 3 + ["B"], "fid": [1, 1, 1, 2], "candid": [1, 2, 3, 4], "mjd": [10.0, 11.0, 12.0, 10.0],
        "magpsf": [18.0, 17.0, 19.0, 18.0], "sigmapsf": [0.1] * 4,
        "magpsf_corr": [13.0, 12.0, np.nan, np.nan], "corrected": [True, True, True, False],
        "dubious": [False, False, True, False], "distnr": [0.5, 0.5, 0.5, 3.0],
        "chinr": [5.0] * 4, "sharpnr": [0.0] * 4,
    })
    ps1 = pd.DataFrame({"oid": ["B", "A"], "sgscore1": [0.9, 0.9], "distpsnr1": [0.1, 0.1]})
    ms = magstats(det, None, ps1=ps1).set_index("oid")
    assert ms.loc["A", "stellar"] and not ms.loc["B", "stellar"]  # B: distnr 3 -> not nearZTF
    assert ms.loc["A", "saturation_rate"] == 1.0  # 2 of 2 non-null corrected magnitudes < 13.2
    assert np.isnan(ms.loc["B", "saturation_rate"])
    assert ms.loc["A", "ndubious"] == 1 and ms.loc["A", "magfirst"] == 18.0 and ms.loc["A", "maglast"] == 19.0
    assert np.isnan(ms.loc["A", "maglast_corr"]) and ms.loc["A", "magmin_corr"] == 12.0
    assert np.isnan(ms.loc["A", "dmdt_first"])
    assert not magstats(det, None).set_index("oid").loc["A", "stellar"]  # no PS1 in detections -> ZTF test
    with pytest.raises(ValueError, match="one row per oid"):
        magstats(det, None, ps1=pd.concat([ps1, ps1]))


def test_dmdt_picks_fastest_rise_and_ignores_recent():
    det = pd.DataFrame({
        "oid": ["A", "A"], "fid": [1, 1], "candid": [1, 2], "mjd": [100.0, 101.0], "magpsf": [18.0, 17.0],
        "sigmapsf": [0.1, 0.1], "magpsf_corr": [np.nan] * 2, "corrected": [False] * 2, "dubious": [False] * 2,
    })
    nd = pd.DataFrame({"oid": ["A"] * 4, "fid": [1, 1, 1, 2], "mjd": [99.8, 98.0, 90.0, 99.0],
                       "diffmaglim": [25.0, 20.0, 21.0, 30.0]})
    row = magstats(det, nd).iloc[0]
    # candidates: (18.1-20)/2 = -0.95 and (18.1-21)/10 = -0.29; 99.8 is within 0.5 d, fid 2 other band
    assert row["dmdt_first"] == pytest.approx(-0.95)
    assert row["dm_first"] == pytest.approx(-2.0)
    assert row["sigmadm_first"] == pytest.approx(0.1 - 20.0)
    assert row["dt_first"] == pytest.approx(2.0)


def test_object_stats_hist_reference_and_colors():
    det = pd.DataFrame({
        "oid": ["A", "A", "B"], "mjd": [10.0, 12.0, 5.0], "ra": [1.0, 1.0002, 2.0], "dec": [3.0, 3.0, 4.0],
        "isdiffpos": [1, 1, -1], "mjdendref": [np.nan, np.nan, np.nan],
    })
    ms = pd.DataFrame({
        "oid": ["A", "A", "B"], "fid": [1, 2, 1], "corrected": [True, False, True],
        "stellar": [True, True, False], "ndet": [1, 1, 1], "ndubious": [0, 1, 0],
        "magmin": [18.0, 17.5, 19.0], "magmean": [18.5, 17.0, 19.0], "magmin_corr": [16.0, np.nan, 15.0],
        "magmean_corr": [16.5, np.nan, 15.0],
    })
    hist = pd.DataFrame({"oid": ["B", "A"], "ndethist": [3, 7], "ncovhist": [9, 20],
                         "jdstarthist": [2459000.5, 2459001.5], "jdendhist": [2459010.5, 2459011.5]})
    ref = pd.DataFrame({"oid": ["A", "A", "B"], "rfid": [1, 2, 3], "mjdendref": [9.0, 11.0, 1.0]})
    obj = object_stats(det, ms, hist=hist, reference=ref).set_index("oid")
    assert obj.loc["A", "ndethist"] == 7 and obj.loc["A", "mjdstarthist"] == 59001.0
    assert obj.loc["A", "g_r_max"] == pytest.approx(0.5) and obj.loc["A", "g_r_mean"] == pytest.approx(1.5)
    assert np.isnan(obj.loc["A", "g_r_max_corr"]) and np.isnan(obj.loc["B", "g_r_mean"])
    assert not obj.loc["A", "corrected"] and obj.loc["A", "stellar"] and obj.loc["A", "ndubious"] == 1
    assert obj.loc["A", "reference_change"] and not obj.loc["B", "reference_change"]
    assert obj.loc["A", "diffpos"] and not obj.loc["B", "diffpos"]
    assert obj.loc["A", "deltajd"] == 2.0 and np.isnan(obj.loc["B", "sigmara"])
    np.testing.assert_allclose(obj.loc["A", "sigmara"], np.std([1.0, 1.0002], ddof=1))
    obj2 = object_stats(det, ms).set_index("oid")
    assert np.isnan(obj2.loc["A", "ndethist"]) and not obj2.loc["A", "reference_change"]
    with pytest.raises(ValueError, match="hist frame must have one row per oid"):
        object_stats(det, ms, hist=pd.concat([hist, hist]))


def test_empty_input():
    res = correct_lightcurves(pd.DataFrame({c: pd.Series(dtype="float64") for c in (
        "oid", "candid", "mjd", "fid", "magpsf", "sigmapsf", "isdiffpos", "distnr", "magnr", "sigmagnr",
        "ra", "dec")}))
    assert len(res.detections) == 0 and len(res.magstats) == 0 and len(res.objects) == 0
