"""Export of store tables / queries to Parquet and CSV (alerce.query.export, CLI main_export)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from alerce.query import export, main_export
from alerce.store import METADATA, Store


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    rng = np.random.default_rng(1)
    n = 250
    det = pd.DataFrame({"oid": np.repeat([f"ZTF{i:03d}" for i in range(50)], 5),
                        "candid": np.arange(n, dtype=np.int64) + 2**40, "mjd": rng.uniform(58000, 59000, n),
                        "fid": rng.integers(1, 3, n), "magpsf": rng.normal(18, 1, n),
                        "magpsf_corr": np.where(rng.random(n) < 0.3, np.nan, 18.0),
                        "has_stamp": rng.random(n) < 0.5, "rbversion": "t8_f5_c3"})
    with Store(url) as st:
        st.write({"detection": det})
    return url, det


@pytest.mark.parametrize("fmt,chunk", [("parquet", 100_000), ("parquet", 7), ("csv", 100_000), ("csv", 7)])
def test_export_table_roundtrip(tmp_path, store_url, fmt, chunk):
    url, det = store_url
    out = tmp_path / f"det.{fmt}"
    n = export(url, "detection", out, fmt, chunk_size=chunk)
    assert n == len(det)
    got = pd.read_parquet(out) if fmt == "parquet" else pd.read_csv(out)
    exp = det.sort_values(["oid", "candid"]).reset_index(drop=True)
    assert got["candid"].tolist() == exp["candid"].tolist()
    np.testing.assert_allclose(got["magpsf"], exp["magpsf"])
    np.testing.assert_array_equal(np.isnan(got["magpsf_corr"].to_numpy(float)), exp["magpsf_corr"].isna())
    assert list(got.columns) == [c.name for c in METADATA.tables["detection"].c]


def test_export_where_and_query(tmp_path, store_url):
    url, det = store_url
    out = tmp_path / "one.parquet"
    assert export(url, "detection", out, where={"oid": "ZTF007", "fid": "1"}) == \
        int(((det.oid == "ZTF007") & (det.fid == 1)).sum())
    assert set(pd.read_parquet(out)["oid"]) <= {"ZTF007"}
    n = export(url, "SELECT oid, count(*) AS n FROM detection GROUP BY oid", tmp_path / "q.csv", "csv")
    assert n == 50 and (pd.read_csv(tmp_path / "q.csv")["n"] == 5).all()
    t = METADATA.tables["detection"]
    n = export(url, sa.select(t.c.oid, t.c.mjd).where(t.c.mjd > 58500), tmp_path / "s.parquet")
    assert n == int((det.mjd > 58500).sum())


def test_export_errors(tmp_path, store_url):
    url, _ = store_url
    with pytest.raises(KeyError, match="unknown table 'nope'; tables: object"):
        export(url, "nope", tmp_path / "x.parquet")
    with pytest.raises(KeyError, match="has no column 'bogus'"):
        export(url, "detection", tmp_path / "x.parquet", where={"bogus": 1})
    with pytest.raises(ValueError, match="valid formats: parquet, csv"):
        export(url, "detection", tmp_path / "x.xlsx", "xlsx")
    with pytest.raises(ValueError, match="fid"):
        export(url, "detection", tmp_path / "x.parquet", where={"fid": "g"})


def test_main_export_cli(tmp_path, store_url, capsys):
    url, det = store_url
    out = tmp_path / "cli.csv"
    assert main_export(["--store", url, "--table", "detection", "--where", "oid=ZTF001",
                        "--where", "oid=ZTF002", "--out", str(out)]) == 0
    got = pd.read_csv(out)
    assert sorted(set(got["oid"])) == ["ZTF001", "ZTF002"] and len(got) == 10
    assert "wrote 10 rows" in capsys.readouterr().out
    assert main_export(["--store", url, "--table", "nope", "--out", str(tmp_path / "n.parquet")]) == 2
    assert "unknown table" in capsys.readouterr().err
