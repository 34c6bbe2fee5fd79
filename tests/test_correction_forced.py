"""Forced-photometry magnitudes: ALeRCE Gen-2 database export and real ZTF 4.01 fp_hists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.correction import forced_photometry_magnitudes

EXPORT = ("golden", "alerce_pipeline_lc_examples", "ZTF24aaecooj_20240605", "forced_photometry.csv")


def _fp_hists_frame() -> pd.DataFrame:
    fastavro = pytest.importorskip("fastavro")
    folder = shared("ztf", "alerts", "kowalski_v4.01_20231012_fp")
    rows = []
    for path in sorted(folder.glob("*.avro")):
        with open(path, "rb") as fh:
            for alert in fastavro.reader(fh):
                for entry in alert.get("fp_hists") or []:
                    rows.append({"oid": alert["objectId"], "mjd": entry["jd"] - 2400000.5, **entry})
    frame = pd.DataFrame(rows)
    assert len(frame) > 100
    return frame


def test_forced_photometry_on_real_fp_hists():
    fp = _fp_hists_frame()
    out = forced_photometry_magnitudes(fp)
    flux, unc = fp["forcediffimflux"], fp["forcediffimfluxunc"]
    valid = flux.notna() & unc.notna() & ~flux.isin([0, -99999]) & ~unc.isin([0, -99999])
    assert 0 < valid.sum() < len(fp)  # the sample has both kinds of entries
    kept = fp[valid].reset_index(drop=True)
    assert len(out) == len(kept)
    assert (out["pid"].to_numpy() == kept["pid"].to_numpy()).all()
    # independent identity: the uJy scaling and the 23.9 AB zero point cancel into the science zero point
    f = kept["forcediffimflux"].to_numpy(np.float64)
    np.testing.assert_allclose(out["mag"], kept["magzpsci"] - 2.5 * np.log10(np.abs(f)), atol=1e-9)
    np.testing.assert_allclose(out["e_mag"], 1.0857 * kept["forcediffimfluxunc"] / np.abs(f), rtol=1e-12)
    np.testing.assert_array_equal(out["isdiffpos"], np.where(f > 0, 1, -1))
    # corrected rows use the fp row's own reference source
    has_ref = (kept["distnr"] >= 0) & (kept["distnr"] < 1.4) & (kept["magnr"] > 0)
    assert np.array_equal(out["corrected"].to_numpy(), has_ref.to_numpy())
    sel = has_ref.to_numpy()
    if sel.any():
        mag, magnr = out["mag"].to_numpy()[sel], kept["magnr"].to_numpy(np.float64)[sel]
        s = out["isdiffpos"].to_numpy()[sel]
        expected = magnr - 2.5 * np.log10(1 + s * 10 ** (-0.4 * (mag - magnr)))
        expected = np.where(np.isnan(expected), 100.0, expected)  # non-positive total flux
        np.testing.assert_allclose(out["mag_corr"].to_numpy()[sel], expected, atol=1e-9)
    assert out.loc[~out["corrected"], ["mag_corr", "e_mag_corr", "e_mag_corr_ext"]].isna().all().all()
    # -99999 reference fields became NaN
    assert not (out[["distnr", "magnr", "sigmagnr"]] == -99999).any().any()


def test_forced_photometry_matches_alerce_export():
    """Rebuild raw fluxes from ALeRCE's stored mag/e_mag and check its corrected values are reproduced."""
    gold = pd.read_csv(shared(*EXPORT))
    gold = gold[gold["mag"] != 100].reset_index(drop=True)  # 100 = no flux in the export
    assert len(gold) >= 5
    ujy_per_count = 10 ** ((8.9 - gold["magzpsci"]) / 2.5) * 1e6
    abs_flux = 10 ** ((23.9 - gold["mag"]) / 2.5) / ujy_per_count
    raw = gold.drop(columns=["mag", "e_mag", "mag_corr", "e_mag_corr", "e_mag_corr_ext", "corrected", "isdiffpos"])
    raw["forcediffimflux"] = gold["isdiffpos"] * abs_flux
    raw["forcediffimfluxunc"] = gold["e_mag"] * abs_flux / 1.0857
    out = forced_photometry_magnitudes(raw)
    assert len(out) == len(gold)
    for col in ("mag", "e_mag", "mag_corr", "e_mag_corr", "e_mag_corr_ext"):
        np.testing.assert_allclose(out[col], gold[col], rtol=0, atol=1e-5, err_msg=col)
    assert (out["e_mag_corr"] == 100).sum() == (gold["e_mag_corr"] == 100).sum() > 0
    np.testing.assert_array_equal(out["corrected"], gold["corrected"])
    np.testing.assert_array_equal(out["isdiffpos"], gold["isdiffpos"])


def test_forced_photometry_filters_and_sentinels():
    fp = pd.DataFrame({
        "forcediffimflux": [100.0, -50.0, 0.0, -99999.0, np.nan, 10.0],
        "forcediffimfluxunc": [5.0, 5.0, 5.0, 5.0, 5.0, -99999.0],
        "magzpsci": [26.0, 26.0, 26.0, 26.0, 26.0, 26.0],
        "distnr": [0.5, -99999.0, 0.5, 0.5, 0.5, 0.5],
        "magnr": [15.0, -99999.0, 15.0, 15.0, 15.0, 15.0],
        "sigmagnr": [0.02] * 6,
    })
    out = forced_photometry_magnitudes(fp)
    assert len(out) == 2
    assert out["isdiffpos"].tolist() == [1, -1]
    np.testing.assert_allclose(out["mag"], [26.0 - 5.0, 26.0 - 2.5 * np.log10(50.0)])
    assert out["corrected"].tolist() == [True, False]  # -99999 distnr is "no reference", not "near"
    assert np.isnan(out.loc[1, "distnr"]) and np.isnan(out.loc[1, "mag_corr"])
    with pytest.raises(ValueError, match="forced_photometry frame is missing"):
        forced_photometry_magnitudes(fp.drop(columns="magzpsci"))
