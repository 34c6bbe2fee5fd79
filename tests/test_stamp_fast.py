"""The fast stamp paths give the same results as the straightforward ones.

* FITS cutouts decoded by the header parser equal astropy's arrays (real ZTF cutouts, and
  unusual files that must fall back to astropy);
* the DFT convolutions equal ``torch.nn.functional.conv2d`` and the fast forward pass equals the
  module's ``forward`` (random and real inputs, default and untrained weights);
* ``classify_alerts`` equals the old path (astropy decoding + module forward) on real alerts.
"""

from __future__ import annotations

import gzip
import io
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import shared

torch = pytest.importorskip("torch")
fits = pytest.importorskip("astropy.io.fits")

from alerce.classifiers.stamp import (  # noqa: E402
    StampClassifier,
    StampInputs,
    classify_alerts,
    load_default_model,
    metadata_features,
)
from alerce.classifiers.stamp.fastconv import DFTConv2d, FastStampForward  # noqa: E402
from alerce.classifiers.stamp.features import encode_isdiffpos  # noqa: E402
from alerce.classifiers.stamp.pipeline import probability_rows  # noqa: E402
from alerce.classifiers.stamp.preprocess import (  # noqa: E402
    CHANNELS,
    preprocess_images,
    stack_cutouts,
)
from alerce.classifiers.stamp.rules import sn_rejected_mask  # noqa: E402
from alerce.io.stamps import decode_stamp  # noqa: E402


def _astropy_decode(blob: bytes) -> np.ndarray:
    """Independent decoder: gunzip + astropy, first HDU with 2-D data, as float32."""
    raw = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(io.BytesIO(raw)) as hdul:
            for hdu in hdul:
                if hdu.data is not None and hdu.data.ndim == 2:
                    return np.array(hdu.data, dtype=np.float32)
    raise ValueError("no image")


@pytest.fixture(scope="module")
def ztf_batch():
    from alerce.io import read_alerts

    return read_alerts(shared("ztf", "alerts"))


def test_decoder_matches_astropy_on_every_real_cutout(ztf_batch, recwarn):
    blobs = [b for c in CHANNELS for b in ztf_batch.stamps[c] if b is not None and len(b)]
    assert len(blobs) > 1000
    for blob in blobs:
        got, ref = decode_stamp(blob), _astropy_decode(blob)
        assert got.dtype == np.float32 and got.dtype.isnative
        assert got.shape == ref.shape
        assert np.array_equal(got, ref, equal_nan=True)
    assert not [w for w in recwarn if "fits" in str(w.category).lower()]


def _fits_bytes(hdus: list) -> bytes:
    buf = io.BytesIO()
    fits.HDUList(hdus).writeto(buf)
    return buf.getvalue()


@pytest.mark.parametrize("case", ["scaled_int16", "unsigned_int16", "blank_int32", "extension",
                                  "float64", "int32_plain", "gzip_two_members"])
def test_decoder_unusual_files_equal_astropy(case):
    rng = np.random.default_rng(3)
    img = rng.normal(100, 20, (7, 9))
    if case == "scaled_int16":
        hdu = fits.PrimaryHDU(rng.integers(-500, 500, (7, 9)).astype(np.int16))
        hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
        blob = _fits_bytes([hdu])
    elif case == "unsigned_int16":
        blob = _fits_bytes([fits.PrimaryHDU(rng.integers(0, 60000, (7, 9)).astype(np.uint16))])
    elif case == "blank_int32":
        hdu = fits.PrimaryHDU(rng.integers(-5, 5, (7, 9)).astype(np.int32))
        hdu.header["BLANK"] = 3
        blob = _fits_bytes([hdu])
    elif case == "extension":  # LSST style: empty primary, image in an extension
        blob = _fits_bytes([fits.PrimaryHDU(), fits.ImageHDU(img.astype(np.float32))])
    elif case == "float64":
        blob = gzip.compress(_fits_bytes([fits.PrimaryHDU(img)]))
    elif case == "int32_plain":
        blob = _fits_bytes([fits.PrimaryHDU(rng.integers(-9, 9, (7, 9)).astype(np.int32))])
    else:
        raw = _fits_bytes([fits.PrimaryHDU(img.astype(np.float32))])
        blob = gzip.compress(raw[:100]) + gzip.compress(raw[100:])
    got, ref = decode_stamp(blob), _astropy_decode(blob)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


def test_decoder_truncated_and_corrupt_raise_value_error():
    raw = _fits_bytes([fits.PrimaryHDU(np.ones((63, 63), np.float32))])
    with pytest.raises(ValueError):
        decode_stamp(gzip.compress(raw)[:-40])           # truncated gzip stream
    with pytest.raises(ValueError):
        decode_stamp(raw[:2880 + 100])                   # header fine, data cut short
    with pytest.raises(ValueError):
        decode_stamp(raw[:2000])                         # no END card


def test_dft_conv_equals_conv2d():
    g = torch.Generator().manual_seed(0)
    for c_in, c_out, size in ((32, 64, 12), (64, 64, 12), (8, 16, 24), (5, 3, 7)):
        conv = torch.nn.Conv2d(c_in, c_out, 5, padding=2)
        x = torch.randn(6, c_in, size, size, generator=g)
        with torch.no_grad():
            ref = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=2)
            got = DFTConv2d(conv, size)(x.permute(2, 3, 0, 1).contiguous()).permute(2, 3, 0, 1)
        scale = ref.abs().max().item()
        np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=2e-6 * scale, rtol=0)
    with pytest.raises(ValueError, match="SAME"):
        DFTConv2d(torch.nn.Conv2d(3, 3, 4), 8)


@pytest.mark.parametrize("which", ["default", "untrained"])
def test_fast_forward_equals_module_forward(which):
    model = load_default_model() if which == "default" else \
        StampClassifier(random_state=5).initialize()
    net = model.network_.eval()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(37, 3, 21, 21, generator=g)
    images[:5] = 0.0                                     # constant stamps (all-NaN crops)
    feats = torch.randn(37, 23, generator=g) * 2
    with torch.inference_mode():
        ref = torch.softmax(net(images, feats).double(), 1).numpy()
        got = torch.softmax(FastStampForward(net)(images, feats).double(), 1).numpy()
    np.testing.assert_allclose(got, ref, atol=2e-6, rtol=0)
    X = StampInputs(images.numpy(), feats.numpy())
    np.testing.assert_allclose(model.predict_proba(X, fast=True),
                               model.predict_proba(X, fast=False), atol=2e-6, rtol=0)


def test_fast_path_follows_weight_changes():
    clf = StampClassifier(random_state=2).initialize()
    rng = np.random.default_rng(0)
    X = StampInputs(rng.random((4, 3, 21, 21), dtype=np.float32), rng.normal(size=(4, 23)))
    before = clf.predict_proba(X)
    with torch.no_grad():
        clf.network_.conv[8].weight.mul_(-3.0)           # a DFT-convolved layer
    after = clf.predict_proba(X)
    assert not np.allclose(before, after, atol=1e-4)
    np.testing.assert_allclose(after, clf.predict_proba(X, fast=False), atol=2e-6, rtol=0)


def test_encode_isdiffpos_numeric_fast_path_equals_string_path():
    values = np.array([1, -1, 0, 2, 1, -1], dtype=np.int8)
    as_text = np.array([str(v) for v in values], dtype=object)
    np.testing.assert_array_equal(encode_isdiffpos(values), encode_isdiffpos(as_text))
    floats = np.array([1.0, -1.0, 0.0, np.nan, 0.5])
    np.testing.assert_array_equal(encode_isdiffpos(floats), [0.0, 1.0, 1.0, np.nan, np.nan])
    np.testing.assert_array_equal(encode_isdiffpos(np.array([True, False])), [0.0, 1.0])


def test_classify_alerts_equals_old_path_on_real_alerts(ztf_batch):
    """New path (own FITS parser, numpy joins, DFT forward) vs old (astropy, module forward)."""
    model = load_default_model()
    alerts = ztf_batch.alerts.drop_duplicates("candid").assign(ssdistnr=-999.0)
    alerts = alerts.reset_index(drop=True)
    rows, dropped = classify_alerts(alerts, ztf_batch.stamps, model, return_dropped=True)

    # old path, written out: join by candid, astropy decoding, module forward, SN rule
    stamps = ztf_batch.stamps.drop_duplicates("candid").set_index("candid")
    with_stamps = alerts[alerts["candid"].isin(stamps.index)].reset_index(drop=True)
    raw, keep = [], []
    for i, cand in enumerate(with_stamps["candid"]):
        try:
            stack = np.stack([_astropy_decode(stamps.loc[cand, c]) for c in CHANNELS])
        except (ValueError, TypeError, OSError, EOFError):
            continue
        if stack.shape == (3, 63, 63):
            raw.append(stack)
            keep.append(i)
    kept = with_stamps.iloc[keep].reset_index(drop=True)
    X = StampInputs(preprocess_images(np.stack(raw)), metadata_features(kept).to_numpy())
    probs = model.predict_proba(X, fast=False)
    reject = sn_rejected_mask(kept, probs)
    expected = probability_rows(kept["oid"].to_numpy()[~reject],
                                kept["candid"].to_numpy()[~reject], probs[~reject],
                                model.model_version)
    assert len(kept) > 300 and len(dropped) == len(alerts) - (~reject).sum()
    pd.testing.assert_frame_equal(rows.drop(columns="probability"),
                                  expected.drop(columns="probability"))
    np.testing.assert_allclose(rows["probability"], expected["probability"], atol=2e-6, rtol=0)


def test_stack_cutouts_keeps_reasons(ztf_batch):
    st = ztf_batch.stamps.iloc[:3].copy()
    st["template"] = pd.Series([None, b"garbage", st["template"].iloc[2]], dtype=object).values
    out = stack_cutouts(st)
    assert out.kept.tolist() == [2]
    assert out.dropped["reason"].tolist()[0] == "template: missing cutout"
    assert out.dropped["reason"].tolist()[1].startswith("template: undecodable cutout (ValueError")
