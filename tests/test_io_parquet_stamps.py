"""ZTF Parquet alerts (checked against pyarrow) and cutout decoding (checked against astropy)."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
from astropy.io import fits
from conftest import shared

from alerce.io import (
    AlertDecodeError,
    decode_stamp,
    read_alerts,
    read_parquet_alerts,
    stamp_hdulist,
)
from alerce.io.ztf import ALERT_COLUMNS

pq = pytest.importorskip("pyarrow.parquet")

ZTF_PARQUET = [
    "alerts_v3.3_51.parquet", "datatest_v3.3_part2_67.parquet", "datatest_v3.3_part3_57.parquet",
    "hostless_v4.02_72_tnslabels.parquet", "superluminous_v3.3+4.02_74_tnslabels.parquet",
    "fink_v3.3_20200101/part-00000-ef0fdc02-e308-4103-8141-dc4b4201db5d.c000.snappy.parquet",
    "fink_v3.3_20200101/science_fink_enriched_part-00000.parquet",
]


@pytest.mark.parametrize("name", ZTF_PARQUET)
def test_ztf_parquet_matches_pyarrow(name):
    path = shared("ztf", "parquet", *name.split("/"))
    rows = pq.read_table(path, columns=["objectId", "candidate", "prv_candidates"]).to_pylist()
    batch = read_parquet_alerts(path)
    assert batch.dead_letters == []
    assert tuple(batch.alerts.columns) == ALERT_COLUMNS
    assert batch.alerts["candid"].tolist() == [r["candidate"]["candid"] for r in rows]
    assert batch.alerts["oid"].tolist() == [r["objectId"] for r in rows]
    prv = [p for r in rows for p in (r["prv_candidates"] or []) if p is not None]
    n_det = sum(p["candid"] is not None for p in prv)
    assert len(batch.detections) == len(rows) + n_det
    assert len(batch.non_detections) == len(prv) - n_det
    jd = np.array([r["candidate"]["jd"] for r in rows])
    assert np.allclose(batch.alerts["mjd"], jd - 2400000.5)
    assert batch.alerts["source"].iloc[-1].endswith(f":row{len(rows) - 1}")


def test_parquet_through_read_alerts_and_not_alert_files():
    folder = shared("ztf", "parquet")
    batch = read_alerts(str(folder / "fink_v3.3_20200101" / "*.parquet"))
    assert len(batch.alerts) == 13
    bad = read_alerts(folder / "agn_example.parquet")
    assert len(bad.alerts) == 0 and "not an alert Parquet file" in bad.dead_letters[0].reason
    with pytest.raises(AlertDecodeError):
        read_parquet_alerts(folder / "agn_example.parquet")


def test_parquet_and_avro_of_same_night_agree():
    avro = read_alerts(shared("ztf", "alerts", "fink_v3.3_20200101"))
    parq = read_alerts(str(shared("ztf", "parquet", "fink_v3.3_20200101")) + "/part-*.parquet")
    common = sorted(set(avro.alerts["candid"]) & set(parq.alerts["candid"]))
    assert common
    a = avro.alerts.set_index("candid").loc[common]
    p = parq.alerts.set_index("candid").loc[common]
    for col in ("oid", "mjd", "fid", "magpsf", "isdiffpos", "rb", "ndethist"):
        assert a[col].tolist() == p[col].tolist(), col


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_decode_ztf_stamp_against_astropy():
    batch = read_alerts(shared("ztf", "alerts", "kowalski_v3.3_20200202"))
    blob = batch.stamps["science"].iloc[0]
    img = decode_stamp(blob)
    with fits.open(io.BytesIO(gzip.decompress(blob))) as ref:
        expected = ref[0].data
    assert img.shape == expected.shape == (63, 63)
    assert img.dtype == np.float32 and img.dtype.isnative
    assert np.array_equal(img, expected, equal_nan=True)
    assert stamp_hdulist(blob)[0].header["NAXIS"] == 2


def test_decode_standalone_fits_files_and_lsst_plain_fits():
    path = shared("ztf", "stamps_fits", "ztf_difference.fits.gz")
    img = decode_stamp(path.read_bytes(), dtype=np.float64)
    with fits.open(path) as ref:
        assert np.array_equal(img, ref[0].data.astype(np.float64), equal_nan=True)
    lsst = read_alerts(shared("lsst", "rubin_v9.0_single"))
    blob = lsst.stamps["science"].iloc[0]
    assert blob[:6] == b"SIMPLE"
    assert decode_stamp(blob).ndim == 2


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\x1f\x8b\x08\x00junk", b"SIMPLE  = junk"])
def test_bad_stamps_raise_value_error(blob):
    with pytest.raises(ValueError):
        decode_stamp(blob)
