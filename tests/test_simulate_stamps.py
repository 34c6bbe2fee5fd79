"""Stamps of the simulator: hand-written gzipped FITS read by astropy, class-consistent images."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from astropy.io import fits

from alerce.simulate import ALL_CLASSES, make_stamps
from alerce.simulate.stamps import ARTIFACTS, fits_bytes, fits_gz_bytes, quantize


def _astropy_read(data: bytes) -> tuple[np.ndarray, fits.Header]:
    with fits.open(io.BytesIO(gzip.decompress(data))) as hdul:
        assert len(hdul) == 1
        return np.array(hdul[0].data), hdul[0].header


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_stamps_roundtrip_through_astropy(cls):
    rng = np.random.default_rng(3)
    images = make_stamps(cls, rng)
    for img in images:
        assert img.shape == (63, 63) and img.dtype == np.float32
        assert np.isfinite(img).all()
        back, header = _astropy_read(fits_gz_bytes(img))
        assert header["BITPIX"] == -32 and header["NAXIS1"] == 63 and header["NAXIS2"] == 63
        np.testing.assert_array_equal(back, img)


def test_fits_layout_and_astropy_equivalence():
    img = np.arange(63 * 40, dtype=np.float32).reshape(40, 63) / 7.0
    raw = fits_bytes(img)
    assert len(raw) % 2880 == 0
    assert raw[:30] == b"SIMPLE  =                    T"
    # astropy writing the same array gives the same data section
    buf = io.BytesIO()
    fits.PrimaryHDU(img).writeto(buf)
    ours = fits.open(io.BytesIO(raw))[0].data
    theirs = fits.open(io.BytesIO(buf.getvalue()))[0].data
    np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="2-D"):
        fits_bytes(np.zeros(5, dtype=np.float32))


def test_gzip_is_deterministic_and_valid():
    img = quantize(np.random.default_rng(0).normal(size=(63, 63)))
    a, b = fits_gz_bytes(img), fits_gz_bytes(img.copy())
    assert a == b and a[:2] == b"\x1f\x8b"
    assert gzip.decompress(a) == fits_bytes(img)


def test_quantize_keeps_relative_precision():
    x = np.random.default_rng(1).uniform(-1e4, 1e4, 1000).astype(np.float32)
    q = quantize(x.copy())
    rel = np.abs(q - x) / np.abs(x)
    assert rel.max() < 2.0**-10 and np.all(np.abs(q) <= np.abs(x))


def _center(img, r=2):
    c = 31
    return float(img[c - r:c + r + 1, c - r:c + r + 1].sum())


def _ring_median(img):
    return float(np.median(np.r_[img[:8].ravel(), img[-8:].ravel()]))


def test_asteroid_has_no_template_source():
    rng = np.random.default_rng(5)
    sci, tmpl, diff = make_stamps("asteroid", rng, diff_flux=3000.0, sky_sigma=10.0,
                                  n_field_stars=0)
    sky_s, sky_t = _ring_median(sci), _ring_median(tmpl)
    assert _center(sci) - 25 * sky_s > 2000
    assert abs(_center(tmpl) - 25 * sky_t) < 200
    assert _center(diff) > 2000


def test_supernova_host_offset_and_point_source_in_difference():
    rng = np.random.default_rng(6)
    sci, tmpl, diff = make_stamps("SNIa", rng, diff_flux=4000.0, host_flux=20000.0,
                                  host_re=3.0, host_offset=(8.0, 0.0), sky_sigma=8.0,
                                  n_field_stars=0)
    t = tmpl - _ring_median(tmpl)
    # host light peaks at the offset position in the template, not at the SN position
    assert t[31, 39] > 3 * t[31, 31] > 0
    assert _center(diff) > 3000
    # nothing extended left in the difference at the host position
    assert abs(float(diff[29:34, 37:42].sum())) < 0.1 * 20000


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_variable_star_signed_residual(sign):
    rng = np.random.default_rng(7)
    sci, tmpl, diff = make_stamps("RRL", rng, diff_flux=sign * 3000.0, ref_flux=20000.0,
                                  sky_sigma=8.0, n_field_stars=0)
    assert _center(tmpl) - 25 * _ring_median(tmpl) > 15000
    assert np.sign(_center(diff)) == sign and abs(_center(diff)) > 2000


@pytest.mark.parametrize("artifact", ARTIFACTS)
def test_bogus_artifacts(artifact):
    rng = np.random.default_rng(8)
    sci, tmpl, diff = make_stamps("bogus", rng, artifact=artifact, diff_flux=2000.0,
                                  sky_sigma=8.0, n_field_stars=0)
    assert np.isfinite(diff).all()
    assert np.abs(diff).max() > 5 * 8.0
    if artifact == "hot_pixel":
        assert diff.max() == diff[30:33, 30:34].max()
        # sharper than any PSF: the peak pixel holds most of the 3x3 flux
        pk = np.unravel_index(np.argmax(diff), diff.shape)
        assert diff[pk] > 0.5 * diff[pk[0] - 1:pk[0] + 2, pk[1] - 1:pk[1] + 2].sum()
    if artifact == "dipole":
        assert diff.min() < -5 * 8.0 and diff.max() > 5 * 8.0


def test_make_stamps_deterministic_and_errors():
    a = make_stamps("SNII", np.random.default_rng(42))
    b = make_stamps("SNII", np.random.default_rng(42))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="unknown class"):
        make_stamps("Cepheid", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown artifact"):
        make_stamps("bogus", np.random.default_rng(0), artifact="ghost")
