"""Stamp classifier preprocessing and metadata features vs independent transcriptions."""

from __future__ import annotations

import gzip
import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from alerce.classifiers.stamp import FEATURE_NAMES, metadata_features, preprocess_stamps  # noqa: E402
from alerce.classifiers.stamp.constants import FEATURE_NORM_STATS  # noqa: E402
from alerce.classifiers.stamp.features import encode_isdiffpos, normalize_features  # noqa: E402
from alerce.classifiers.stamp.preprocess import preprocess_images  # noqa: E402


def _reference_preprocess(stack_hwc: np.ndarray) -> np.ndarray:
    """Plain transcription of reference 4.1 on one 63x63x3 sample (channels last, loops)."""
    crop = stack_hwc[21:42, 21:42, :].astype(np.float64)
    out = np.zeros_like(crop)
    for c in range(3):
        x = crop[:, :, c]
        if np.all(np.isnan(x)):
            continue
        x = x - np.nanmin(x)
        m = np.nanmax(x)
        x = x / m if m != 0 else np.full_like(x, np.nan)
        out[:, :, c] = np.nan_to_num(x, nan=0.0)
    return out


def _fits_gz(image: np.ndarray) -> bytes:
    from astropy.io import fits

    buf = io.BytesIO()
    fits.PrimaryHDU(image.astype(np.float32)).writeto(buf)
    return gzip.compress(buf.getvalue())


def test_preprocess_matches_numpy_transcription():
    rng = np.random.default_rng(3)
    raw = rng.normal(100, 20, (6, 63, 63, 3)).astype(np.float32)
    raw[1, 25:30, 25:30, 0] = np.nan          # masked pixels inside the crop
    raw[2, :, :, 1] = 7.0                      # constant channel -> 0
    raw[3, :, :, 2] = np.nan                   # all-NaN channel -> 0
    raw[4, 0:21, :, :] = 1e6                   # outside the crop: must not matter
    got = preprocess_images(np.transpose(raw, (0, 3, 1, 2)))
    assert got.shape == (6, 3, 21, 21) and got.dtype == np.float32
    for i in range(6):
        want = np.transpose(_reference_preprocess(raw[i]), (2, 0, 1))
        np.testing.assert_allclose(got[i], want, rtol=1e-6, atol=1e-6)
    assert np.all(got[2, 1] == 0) and np.all(got[3, 2] == 0)
    assert got[0].min() == 0.0 and np.isclose(got[0].max(), 1.0)


def test_preprocess_stamps_decodes_and_drops_misshaped():
    rng = np.random.default_rng(4)
    imgs = rng.normal(0, 1, (3, 3, 63, 63)).astype(np.float32)
    rows = []
    for i in range(3):
        rows.append({"oid": f"o{i}", "candid": i,
                     **{ch: _fits_gz(imgs[i, k]) for k, ch in
                        enumerate(("science", "template", "difference"))}})
    rows[1]["template"] = _fits_gz(np.zeros((62, 63)))
    rows.append({"oid": "o3", "candid": 3, "science": None, "template": b"x", "difference": b"y"})
    rows.append({"oid": "o4", "candid": 4, "science": b"not a fits file",
                 "template": rows[0]["template"], "difference": rows[0]["difference"]})
    out = preprocess_stamps(pd.DataFrame(rows))
    assert out.kept.tolist() == [0, 2]
    np.testing.assert_allclose(out.images, preprocess_images(imgs[[0, 2]]), atol=1e-7)
    reasons = dict(zip(out.dropped["candid"], out.dropped["reason"]))
    assert set(reasons) == {1, 3, 4}
    assert "misshaped" in reasons[1] and "template" in reasons[1]
    assert "missing" in reasons[3]
    assert "undecodable" in reasons[4]


def test_coordinates_match_astropy():
    import astropy.units as u
    from astropy.coordinates import BarycentricMeanEcliptic, SkyCoord

    rng = np.random.default_rng(5)
    ra, dec = rng.uniform(0, 360, 50), np.degrees(np.arcsin(rng.uniform(-1, 1, 50)))
    alerts = pd.DataFrame({"ra": ra, "dec": dec, "isdiffpos": np.int8(1)})
    f = metadata_features(alerts)
    c = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs")
    ecl = c.transform_to(BarycentricMeanEcliptic(equinox="J2000"))
    np.testing.assert_allclose(f["gal_lat"], c.galactic.b.deg, atol=1e-8)
    np.testing.assert_allclose(f["ecl_lat"], ecl.lat.deg, atol=1e-8)
    dl = (f["gal_long"] - c.galactic.l.deg + 180) % 360 - 180
    de = (f["ecl_long"] - ecl.lon.deg + 180) % 360 - 180
    assert np.abs(dl).max() < 1e-7 and np.abs(de).max() < 1e-7
    assert f["gal_long"].between(0, 360).all() and f["ecl_long"].between(0, 360).all()


def test_metadata_columns_encoding_and_normalization():
    alerts = pd.DataFrame({
        "sgscore1": [-999.0, 0.9], "distpsnr1": [-999.0, 0.3], "sgscore2": [0.1, 0.2],
        "distpsnr2": [5.0, 6.0], "sgscore3": [0.3, 0.4], "distpsnr3": [9.0, 10.0],
        "isdiffpos": np.array([1, -1], dtype=np.int8), "fwhm": [20.0, 2.0],
        "magpsf": [18.0, 19.0], "sigmapsf": [0.1, 0.2], "ra": [10.0, 20.0], "dec": [5.0, -5.0],
        "diffmaglim": [20.0, 20.5], "classtar": [0.9, 0.5], "ndethist": [30, 3],
        "ncovhist": [5000, 10], "chinr": [20.0, -5.0], "sharpnr": [3.0, -3.0],
    })
    f = metadata_features(alerts)
    assert list(f.columns) == list(FEATURE_NAMES) and len(FEATURE_NAMES) == 23
    assert f["isdiffpos"].tolist() == [0.0, 1.0]              # t -> 0, f -> 1
    assert f["non_detections"].tolist() == [4970.0, 7.0]      # ncovhist - ndethist
    z = normalize_features(f)
    j = {n: i for i, n in enumerate(FEATURE_NAMES)}
    mean, std = FEATURE_NORM_STATS["sgscore1"]
    assert np.isclose(z[0, j["sgscore1"]], (-1.0 - mean) / std, atol=1e-6)   # clipped at -1
    mean, std = FEATURE_NORM_STATS["fwhm"]
    assert np.isclose(z[0, j["fwhm"]], (10.0 - mean) / std, atol=1e-6)       # clipped at 10
    mean, std = FEATURE_NORM_STATS["non_detections"]
    assert np.isclose(z[0, j["non_detections"]], (2000 - mean) / std, atol=1e-5)
    mean, std = FEATURE_NORM_STATS["chinr"]
    assert np.isclose(z[1, j["chinr"]], (-1 - mean) / std, atol=1e-6)
    mean, std = FEATURE_NORM_STATS["sharpnr"]
    assert np.isclose(z[0, j["sharpnr"]], (1.5 - mean) / std, atol=1e-6)
    mean, std = FEATURE_NORM_STATS["magpsf"]
    assert np.isclose(z[1, j["magpsf"]], (19.0 - mean) / std, atol=1e-6)
    # the re-derived isdiffpos mean satisfies std**2 = p (1 - p)
    p, s = FEATURE_NORM_STATS["isdiffpos"]
    assert np.isclose(p * (1 - p), s**2) and p < 0.5


def test_missing_columns_become_zero_after_normalization():
    f = metadata_features(pd.DataFrame({"ra": [1.0], "dec": [2.0]}))
    assert np.isnan(f["sgscore1"]).all()
    z = normalize_features(f)
    assert np.isfinite(z).all() and z[0, FEATURE_NAMES.index("sgscore1")] == 0.0


def test_isdiffpos_accepts_strings_and_signs():
    got = encode_isdiffpos(pd.Series(["t", "f", "1", "0", 1, -1, None], dtype=object))
    np.testing.assert_array_equal(got[:6], [0, 1, 0, 1, 0, 1])
    assert np.isnan(got[6])


def test_import_without_torch_names_the_extra():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n import alerce.classifiers.stamp\nexcept ImportError as e:\n print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install alerce-broker[torch]" in out.stdout
