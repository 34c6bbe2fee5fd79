"""simulate_lightcurves: frames, labels, physics of the models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import shared

from alerce.batch import DETECTION_COLUMNS, NON_DETECTION_COLUMNS
from alerce.simulate import GROUP, LC_CLASSES, TAXONOMY, simulate_lightcurves
from alerce.simulate.classes import DEFAULT_MIX, normalize_mix
from alerce.simulate.models import drw, villar_flux


@pytest.fixture(scope="module")
def lcs():
    return simulate_lightcurves(300, seed=5)


def test_taxonomy_names():
    assert set(LC_CLASSES) == {"AGN", "Blazar", "CV/Nova", "QSO", "YSO", "CEP", "DSCT", "E",
                               "LPV", "Periodic-Other", "RRL", "SLSN", "SNII", "SNIa", "SNIbc"}
    assert set(TAXONOMY) == {"Periodic", "Stochastic", "Transient"}
    assert GROUP["LPV"] == "Periodic" and GROUP["asteroid"] == "asteroid"
    assert abs(sum(DEFAULT_MIX.values()) - 1) < 1e-9
    with pytest.raises(ValueError, match="unknown class"):
        normalize_mix(["SN Ia"])


def test_frames_columns_and_labels(lcs):
    det, nondet, labels = lcs
    assert list(det.columns) == list(DETECTION_COLUMNS)
    assert list(nondet.columns) == list(NON_DETECTION_COLUMNS)
    assert {"oid", "class", "group"} <= set(labels.columns)
    assert labels["oid"].is_unique
    assert set(det["oid"]) == set(labels["oid"])
    assert set(labels["class"]) <= set(LC_CLASSES)
    assert len(set(labels["class"])) >= 13  # 300 objects over 15 equiprobable classes
    assert det["candid"].is_unique
    assert set(det["isdiffpos"].unique()) <= {1, -1}
    assert det["fid"].isin([1, 2]).all()
    # ZTF-like oids
    assert labels["oid"].str.fullmatch(r"ZTF\d{2}[a-z]{7}").all()


def test_photometry_is_significant_and_consistent(lcs):
    det, nondet, _ = lcs
    # detections are 5-sigma: sigmapsf = 1.0857 / SNR <= 1.0857 / 5
    assert (det["sigmapsf"] <= 1.0857362 / 5 + 1e-9).all()
    assert det["diffmaglim"].between(19.0, 21.3).all()
    assert nondet["diffmaglim"].between(19.0, 21.3).all()
    # a 5-sigma detection cannot be fainter than the 5-sigma limit
    assert (det["magpsf"] <= det["diffmaglim"] + 1e-6).all()
    # candid increases with time within an object
    for _, g in det.groupby("oid"):
        assert np.all(np.diff(g["mjd"].to_numpy()) > 0)
        assert np.all(np.diff(g["candid"].to_numpy()) > 0)


def test_cadence_is_ztf_like(lcs):
    det, nondet, _ = lcs
    allobs = pd.concat([det[["oid", "mjd"]], nondet[["oid", "mjd"]]])
    nights = allobs.assign(n=np.floor(allobs["mjd"])).groupby("oid")["n"]
    per_night = allobs.assign(n=np.floor(allobs["mjd"])).groupby(["oid", "n"]).size()
    assert per_night.max() >= 2  # several epochs per night happen
    gaps = nights.apply(lambda s: np.diff(np.unique(s.to_numpy())))
    g = np.concatenate(gaps.to_numpy())
    assert np.median(g) <= 3  # ~1-3 day revisits
    assert g.max() > 60  # seasonal gaps


def test_determinism_and_class_selection():
    a = simulate_lightcurves(60, seed=9, classes=["RRL", "SNIa"])
    b = simulate_lightcurves(60, seed=9, classes=["RRL", "SNIa"])
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert set(a[2]["class"]) == {"RRL", "SNIa"}
    c = simulate_lightcurves(60, seed=10, classes=["RRL", "SNIa"])
    assert not a[0]["magpsf"].equals(c[0]["magpsf"])
    with pytest.raises(ValueError):
        simulate_lightcurves(-1, seed=0)


def test_rrl_period_recovered_by_lomb_scargle():
    from astropy.timeseries import LombScargle

    det, _, labels = simulate_lightcurves(12, seed=21, classes=["RRL"], min_detections=40)
    assert len(labels) >= 3
    recovered = 0
    for _, lab in labels.iterrows():
        d = det[(det["oid"] == lab["oid"]) & (det["fid"] == 2)]
        # total magnitude of the star from the difference flux and the reference magnitude
        f = 10 ** (-0.4 * d["magnr"]) + d["isdiffpos"] * 10 ** (-0.4 * d["magpsf"])
        mag = -2.5 * np.log10(f)
        freq, power = LombScargle(d["mjd"], mag, d["sigmapsf"]).autopower(
            minimum_frequency=0.5, maximum_frequency=5.0, samples_per_peak=20)
        best = 1 / freq[np.argmax(power)]
        recovered += abs(best - lab["period"]) / lab["period"] < 0.01
    assert recovered >= len(labels) - 1


def test_transients_rise_and_redden():
    det, _, labels = simulate_lightcurves(40, seed=4, classes=["SNIa"], min_detections=8)
    assert len(labels) > 5
    reddening = []
    for _, lab in labels.iterrows():
        d = det[det["oid"] == lab["oid"]]
        assert (d["isdiffpos"] == 1).mean() > 0.95
        late = d[d["mjd"] > lab["peak_mjd"] + 25]
        g, r = late[late["fid"] == 1], late[late["fid"] == 2]
        if len(g) and len(r):
            reddening.append(g["magpsf"].median() - r["magpsf"].median())
    assert reddening and np.median(reddening) > 0.2


def test_villar_model_matches_formula():
    t = np.linspace(59000, 59200, 401)
    f = villar_flux(t, 59050.0, 100.0, 3.0, 10.0, -0.02, 25.0)
    t0, t1 = 59040.0, 59050.0
    amp = 100.0 / ((1 - 0.02 * 10) / (1 + np.exp(-10 / 3.0)))
    expected = np.where(
        t < t1, amp * (1 - 0.02 * (t - t0)) / (1 + np.exp(-(t - t0) / 3.0)),
        amp * (1 - 0.2) * np.exp(-(t - t1) / 25.0) / (1 + np.exp(-(t - t0) / 3.0)))
    np.testing.assert_allclose(f, expected, rtol=1e-12)
    assert abs(f[np.searchsorted(t, t1)] - 100.0) < 1e-9


def test_drw_statistics():
    rng = np.random.default_rng(0)
    n = 20000
    t = np.cumsum(rng.uniform(0.5, 1.5, n))
    first = np.zeros(n, bool)
    first[0] = True
    tau, sig = 20.0, 0.3
    x = drw(t, first, np.full(n, tau), np.full(n, sig), rng.standard_normal(n))
    assert abs(x.std() - sig) < 0.05
    # lag-1 autocorrelation of an OU process ~ exp(-dt/tau)
    ac = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert abs(ac - np.exp(-1.0 / tau)) < 0.02


def test_error_relation_close_to_real_ztf():
    """sigmapsf vs depth: SNR relative to a sky-limited 5-sigma limit, real alerts vs simulated.

    For detections away from a reference source (transients, no bright static source), the
    real ZTF PSF-fit SNR is ``5 * 10**(0.4 * (diffmaglim - magpsf))`` times a factor ~10**-0.2.
    The simulated relation must agree within 0.25 dex.
    """
    import fastavro

    folder = shared("ztf", "alerts")
    rows = []
    for f in sorted(folder.rglob("*.avro")):
        try:
            with open(f, "rb") as fh:
                for a in fastavro.reader(fh):
                    for c in [a["candidate"], *(a.get("prv_candidates") or [])]:
                        if c.get("candid") is not None and c.get("magpsf") is not None:
                            rows.append((c["magpsf"], c["sigmapsf"], c["diffmaglim"],
                                         c["distnr"] if c["distnr"] is not None else -999))
        except Exception:  # noqa: BLE001 - codecs not installed etc.: skip that file
            continue
    real = pd.DataFrame(rows, columns=["magpsf", "sigmapsf", "diffmaglim", "distnr"]).dropna()
    assert len(real) > 300

    def offset(df):
        far = (df["distnr"] < 0) | (df["distnr"] > 1.5)
        d = df[far]
        snr = 1.0857362 / d["sigmapsf"]
        return float(np.median(np.log10(snr / (5 * 10 ** (0.4 * (d["diffmaglim"] - d["magpsf"]))))))

    det, _, _ = simulate_lightcurves(200, seed=1, classes=["SNIa", "SNII", "SNIbc", "SLSN"])
    assert abs(offset(det) - offset(real)) < 0.25
