"""Tests of alerce.store on SQLite and on a throw-away PostgreSQL server (same suite for both)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import shared
from pg import pg_server, pg_url  # noqa: F401 - fixtures

from alerce.batch import (
    DATAQUALITY_COLUMNS,
    DETECTION_COLUMNS,
    FORCED_PHOTOMETRY_COLUMNS,
    GAIA_COLUMNS,
    MJD_OFFSET,
    NON_DETECTION_COLUMNS,
    PS1_COLUMNS,
    REFERENCE_COLUMNS,
    SS_COLUMNS,
)
from alerce.store import (
    METADATA,
    STATE_TABLES,
    Migration,
    MissingDriverError,
    Store,
    StoreDataError,
    StoreVersionError,
    StoreWriteError,
    primary_key,
    upgrade,
)
from alerce.store import version as store_version

CORRECTED = ("magpsf_corr", "sigmapsf_corr", "sigmapsf_corr_ext", "corrected", "dubious", "step_id_corr")


# ------------------------------------------------------------------------------------------------
# fixtures and synthetic frames
# ------------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A store URL on each back end (PostgreSQL skips when the server binaries are absent)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(url):
    with Store(url) as st:
        yield st


def make_detections(n_obj: int = 5, n_per: int = 8, seed: int = 0, prefix: str = "ZTF20obj") -> pd.DataFrame:
    """Detections with the dtypes of an AlertBatch frame plus the correction's columns."""
    rng = np.random.default_rng(seed)
    n = n_obj * n_per
    oid = np.repeat([f"{prefix}{i:04d}" for i in range(n_obj)], n_per)
    candid = 1_000_000_000_000_000_000 + seed * 10_000_000 + np.arange(n, dtype=np.int64) * 7919
    parent = pd.array(np.where(np.arange(n) % n_per == n_per - 1, pd.NA, candid + 1), dtype="Int64")
    df = pd.DataFrame({
        "oid": pd.Series(oid, dtype="str"),
        "candid": candid,
        "mjd": 58000 + rng.uniform(0, 1000, n),
        "fid": rng.integers(1, 3, n).astype(np.int64),
        "pid": candid // 1000,
        "diffmaglim": rng.uniform(19, 21, n).astype(np.float32),
        "isdiffpos": rng.choice(np.array([1, -1], dtype=np.int8), n),
        "nid": rng.integers(500, 1500, n).astype(np.int32),
        "ra": rng.uniform(0, 360, n),
        "dec": rng.uniform(-30, 90, n),
        "magpsf": rng.normal(18, 1, n),
        "sigmapsf": rng.uniform(0.01, 0.2, n),
        "magap": rng.normal(18, 1, n),
        "sigmagap": rng.uniform(0.01, 0.2, n),
        "distnr": rng.uniform(0, 5, n),
        "rb": rng.uniform(0, 1, n),
        "rbversion": pd.Series(["t17_f5_c3"] * n, dtype="str"),
        "drb": rng.uniform(0, 1, n),
        "drbversion": pd.Series(["d6_m7"] * n, dtype="str"),
        "magapbig": rng.normal(18, 1, n),
        "sigmagapbig": rng.uniform(0.01, 0.2, n),
        "rfid": rng.integers(100_000_000, 900_000_000, n),
        "magnr": rng.normal(17, 1, n),
        "sigmagnr": rng.uniform(0.01, 0.1, n),
        "chinr": rng.uniform(0, 3, n),
        "sharpnr": rng.uniform(-0.5, 0.5, n),
        "mjdendref": 58000.0 + rng.uniform(-500, 0, n),
        "parent_candid": parent,
        "has_stamp": np.arange(n) % n_per == n_per - 1,
        "magpsf_corr": rng.normal(17, 1, n),
        "sigmapsf_corr": rng.uniform(0.01, 0.2, n),
        "sigmapsf_corr_ext": rng.uniform(0.01, 0.2, n),
        "corrected": rng.random(n) < 0.5,
        "dubious": rng.random(n) < 0.1,
        "step_id_corr": pd.Series(["corr 1.0"] * n, dtype="str"),
    })
    df.loc[df.index % 5 == 0, "magpsf_corr"] = np.nan
    return df


def make_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """A small, consistent set of frames for several tables."""
    det = make_detections(seed=seed)
    oids = pd.unique(det["oid"])
    rng = np.random.default_rng(seed + 100)
    nd = pd.DataFrame({"oid": np.repeat(oids, 3), "fid": np.tile([1, 2, 1], len(oids)).astype(np.int64),
                       "mjd": np.tile([57990.5, 57991.25, 57992.125], len(oids)),
                       "diffmaglim": rng.uniform(19, 21, 3 * len(oids)),
                       "parent_candid": pd.array([pd.NA] * (3 * len(oids)), dtype="Int64")})
    obj = pd.DataFrame({"oid": oids, "ndet": np.full(len(oids), 8), "meanra": rng.uniform(0, 360, len(oids)),
                        "meandec": rng.uniform(-30, 60, len(oids)), "corrected": [True, False] * 2 + [True],
                        "stellar": [False] * len(oids), "firstmjd": rng.uniform(58000, 58100, len(oids)),
                        "step_id_corr": ["corr 1.0"] * len(oids), "ndubious": np.zeros(len(oids), int)})
    mag = pd.DataFrame({"oid": np.repeat(oids, 2), "fid": np.tile([1, 2], len(oids)),
                        "ndet": np.full(2 * len(oids), 4), "magmean": rng.normal(18, 1, 2 * len(oids)),
                        "magsigma": np.where(np.arange(2 * len(oids)) % 3 == 0, np.nan, 0.1),
                        "stellar": [False] * (2 * len(oids)), "corrected": [True] * (2 * len(oids))})
    feat = pd.DataFrame({"oid": np.repeat(oids, 2), "name": ["Amplitude", "Mean"] * len(oids),
                         "fid": np.ones(2 * len(oids), int), "version": "v1",
                         "value": rng.normal(size=2 * len(oids))})
    prob = pd.DataFrame({"oid": oids, "class_name": "SNIa", "classifier_name": "lc", "classifier_version": "1",
                         "probability": rng.uniform(size=len(oids)), "ranking": np.ones(len(oids), int)})
    score = pd.DataFrame({"oid": oids, "detector_name": "iforest", "detector_version": "0.1",
                          "category": "transient", "score": rng.normal(size=len(oids))})
    return {"detection": det, "non_detection": nd, "object": obj, "magstat": mag, "feature": feat,
            "probability": prob, "score": score}


def sort_frame(df: pd.DataFrame, table: str) -> pd.DataFrame:
    key = primary_key(METADATA.tables[table])
    return df.sort_values(key, kind="mergesort").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# schema (no database)
# ------------------------------------------------------------------------------------------------

EXPECTED_KEYS = {
    "object": {"oid"}, "magstat": {"oid", "fid"}, "detection": {"candid", "oid"},
    "non_detection": {"oid", "fid", "mjd"}, "forced_photometry": {"oid", "pid"},
    "ps1_ztf": {"oid", "candid"}, "ss_ztf": {"oid"}, "gaia_ztf": {"oid"}, "reference": {"oid", "rfid"},
    "dataquality": {"candid", "oid"}, "xmatch": {"oid", "catid"}, "allwise": {"oid_catalog"},
    "feature": {"oid", "name", "fid", "version"}, "feature_version": {"version"},
    "probability": {"oid", "class_name", "classifier_name", "classifier_version"},
    "taxonomy": {"classifier_name", "classifier_version"}, "step": {"step_id"}, "pipeline": {"pipeline_id"},
    "score": {"oid", "detector_name", "detector_version", "category"}, "schema_version": {"version"},
}


def test_schema_has_alerce_tables_with_their_primary_keys():
    assert set(METADATA.tables) == set(EXPECTED_KEYS)
    for name, key in EXPECTED_KEYS.items():
        assert set(primary_key(METADATA.tables[name])) == key, name


@pytest.mark.parametrize("table, columns", [
    ("detection", DETECTION_COLUMNS + CORRECTED),
    ("non_detection", NON_DETECTION_COLUMNS),
    ("forced_photometry", FORCED_PHOTOMETRY_COLUMNS + (
        "mag", "e_mag", "mag_corr", "e_mag_corr", "e_mag_corr_ext", "isdiffpos", "corrected", "dubious")),
    ("ps1_ztf", ("oid", "candid") + PS1_COLUMNS),
    ("ss_ztf", ("oid", "candid") + SS_COLUMNS),
    ("gaia_ztf", ("oid", "candid") + GAIA_COLUMNS),
    ("reference", ("oid", "candid") + REFERENCE_COLUMNS),
    ("dataquality", ("oid", "candid") + DATAQUALITY_COLUMNS),
])
def test_table_columns_match_frame_columns(table, columns):
    missing = set(columns) - set(METADATA.tables[table].c.keys())
    assert not missing, f"{table} lacks {missing}"


def test_types_follow_the_spec():
    det = METADATA.tables["detection"].c
    assert isinstance(det.oid.type, sa.Text)
    assert isinstance(det.candid.type, sa.BigInteger)
    assert isinstance(det.fid.type, sa.Integer)
    assert isinstance(det.magpsf.type, sa.Double)
    assert isinstance(det.corrected.type, sa.Boolean)


def test_missing_postgres_driver_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    with pytest.raises(MissingDriverError, match=r"alerce-broker\[postgres\]"):
        Store("postgresql://user@127.0.0.1:1/db")


def test_in_memory_sqlite_store():
    with Store("sqlite://") as st:
        assert st.write({"object": pd.DataFrame({"oid": ["a", "b"], "ndet": [1, 2]})}) == {"object": 2}
        assert st.count("object") == 2


# ------------------------------------------------------------------------------------------------
# both back ends
# ------------------------------------------------------------------------------------------------

def test_sqlite_file_store_settings(tmp_path):
    from alerce.store.engine import SQLITE_WAL_AUTOCHECKPOINT

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    with store.engine.connect() as conn:
        pragma = {k: conn.exec_driver_sql(f"PRAGMA {k}").scalar()
                  for k in ("journal_mode", "synchronous", "wal_autocheckpoint")}
    assert pragma == {"journal_mode": "wal", "synchronous": 1, "wal_autocheckpoint": SQLITE_WAL_AUTOCHECKPOINT}
    store.close()


def test_write_is_idempotent(store):
    tables = make_tables()
    first = store.write(tables)
    snapshot = {name: store.read_table(name) for name in tables}
    second = store.write(tables)
    assert first == second == {name: len(df) for name, df in tables.items()}
    for name in tables:
        pd.testing.assert_frame_equal(store.read_table(name), snapshot[name], check_exact=True)
        assert store.count(name) == len(tables[name])


def test_detection_round_trip_is_exact(store):
    det = make_detections(n_obj=7, n_per=11, seed=3)
    store.write({"detection": det})
    back = sort_frame(store.read_table("detection"), "detection")
    exp = sort_frame(det, "detection")
    for col in DETECTION_COLUMNS + CORRECTED:
        got, want = back[col], exp[col]
        if col == "parent_candid":
            assert got.dtype == "Int64"
            assert got.isna().tolist() == want.isna().tolist()
            assert got.dropna().tolist() == want.dropna().tolist()
        elif pd.api.types.is_float_dtype(want.dtype):
            np.testing.assert_array_equal(got.to_numpy(), want.to_numpy(dtype="float64"), err_msg=col)
        else:
            assert got.astype(object).tolist() == want.astype(object).tolist(), col


def test_nan_and_na_are_stored_as_null(store, url):
    frame = pd.DataFrame({
        "oid": ["a", "b", "c"],
        "candid": pd.array([1, 2, 3], dtype="Int64"),
        "magpsf": [np.float32(17.5), np.nan, None],
        "nid": pd.array([pd.NA, 5, pd.NA], dtype="Int64"),
        "rbversion": pd.Series(["x", None, pd.NA], dtype=object),
        "dubious": pd.array([True, pd.NA, False], dtype="boolean"),
        "rfid": [np.int64(7), np.nan, 9.0],
        "fid": [np.int32(1), np.int64(2), 1],
    })
    store.write({"detection": frame})
    with sa.create_engine(store.engine.url).connect() as conn:
        nulls = conn.execute(sa.text(
            "SELECT oid FROM detection WHERE magpsf IS NULL AND nid IS NULL ORDER BY oid")).scalars().all()
        assert nulls == ["c"]
        assert conn.execute(sa.text("SELECT COUNT(*) FROM detection WHERE rbversion IS NULL")).scalar() == 2
        assert conn.execute(sa.text("SELECT oid FROM detection WHERE dubious IS NULL")).scalars().all() == ["b"]
        # columns absent from the frame are NULL, not 0/NaN
        assert conn.execute(sa.text("SELECT COUNT(*) FROM detection WHERE ra IS NULL")).scalar() == 3
        assert conn.execute(sa.text("SELECT rfid FROM detection ORDER BY oid")).scalars().all() == [7, None, 9]
    back = store.read_table("detection").set_index("oid")
    assert back.loc["a", "magpsf"] == pytest.approx(17.5)
    assert np.isnan(back.loc["b", "magpsf"]) and np.isnan(back.loc["c", "magpsf"])
    assert back["nid"].dtype == "Int64" and back["nid"].isna().tolist() == [True, False, True]
    assert back["dubious"].dtype == "boolean" and back["dubious"].isna().tolist() == [False, True, False]
    assert back["candid"].dtype == "int64" and back["fid"].dtype == "int64"


def test_object_columns_of_big_integers_keep_every_digit(store):
    big = 1_234_567_890_123_456_789  # > 2**53: would lose digits through float64
    frame = pd.DataFrame({"oid": ["a", "b"], "candid": pd.Series([big, big + 1], dtype=object),
                          "parent_candid": pd.Series([None, big], dtype=object)})
    store.write({"detection": frame})
    back = store.read_table("detection")
    assert back["candid"].tolist() == [big, big + 1]
    assert back["parent_candid"].isna().tolist() == [True, False] and back["parent_candid"][1] == big


def test_update_keeps_columns_the_frame_lacks_and_ignores_extra_columns(store):
    store.write({"object": pd.DataFrame({"oid": ["a"], "ndet": [3], "meanra": [10.0], "not_a_column": [1]})})
    store.write({"object": pd.DataFrame({"oid": ["a"], "ndet": [4]})})
    row = store.read_table("object").iloc[0]
    assert row["ndet"] == 4 and row["meanra"] == 10.0
    assert "not_a_column" not in store.read_table("object").columns


def test_repeated_keys_in_one_frame_keep_the_last_row(store):
    frame = pd.DataFrame({"oid": ["a", "a", "b"], "ndet": [1, 2, 3]})
    assert store.write({"object": frame}) == {"object": 2}
    assert store.read_table("object")["ndet"].tolist() == [2, 3]


@pytest.mark.parametrize("table, value_col, value", [("ss_ztf", "ssnamenr", "old"), ("gaia_ztf", "maggaia", 1.0)])
def test_candid_guard_makes_replay_order_irrelevant(store, table, value_col, value):
    def rows(candid, v):
        return pd.DataFrame({"oid": ["o1"], "candid": [candid], value_col: [v]})

    new = "new" if isinstance(value, str) else 2.0
    store.write({table: rows(20, new)})
    store.write({table: rows(10, value)})          # older alert replayed late: ignored
    got = store.read_table(table).iloc[0]
    assert got["candid"] == 20 and got[value_col] == new
    store.write({table: rows(20, new)})            # same alert again: unchanged
    assert store.read_table(table).iloc[0]["candid"] == 20
    store.write({table: rows(30, value)})          # newer alert: replaces
    got = store.read_table(table).iloc[0]
    assert got["candid"] == 30 and got[value_col] == value
    # several rows of one object in one frame: the largest candid wins whatever the order
    store.write({table: pd.concat([rows(50, new), rows(40, value)], ignore_index=True)})
    got = store.read_table(table).iloc[0]
    assert got["candid"] == 50 and got[value_col] == new


def test_other_tables_take_the_last_write(store):
    store.write({"ps1_ztf": pd.DataFrame({"oid": ["o"], "candid": [5], "sgscore1": [0.9]})})
    store.write({"ps1_ztf": pd.DataFrame({"oid": ["o"], "candid": [5], "sgscore1": [0.1]})})
    assert store.read_table("ps1_ztf")["sgscore1"].tolist() == [0.1]


def test_load_state_returns_only_the_requested_objects_with_dtypes(store):
    tables = make_tables(seed=1)
    tables["forced_photometry"] = pd.DataFrame({
        "oid": tables["object"]["oid"], "pid": np.arange(5, dtype=np.int64) + 10**11,
        "mjd": 58000.0 + np.arange(5), "fid": np.ones(5, int), "forcediffimflux": np.linspace(-5, 5, 5),
        "procstatus": ["0"] * 5, "parent_candid": pd.array([1, 2, 3, 4, pd.NA], dtype="Int64"),
        "corrected": [True, False, True, False, True],
    })
    store.write(tables)
    wanted = list(tables["object"]["oid"][:3]) + ["ZTF_not_stored", tables["object"]["oid"][0]]
    state = store.load_state(wanted)
    assert set(state) == set(STATE_TABLES)
    for name in STATE_TABLES:
        frame = state[name]
        assert list(frame.columns) == list(METADATA.tables[name].c.keys()), name
        assert set(frame["oid"]) <= set(wanted[:3]), name
    det = state["detection"]
    exp = tables["detection"][tables["detection"]["oid"].isin(wanted)]
    assert len(det) == len(exp) and set(det["candid"]) == set(exp["candid"])
    assert det["candid"].dtype == np.int64 and det["fid"].dtype == np.int64
    assert det["has_stamp"].dtype == bool and det["corrected"].dtype == bool
    assert det["parent_candid"].dtype == "Int64"
    assert state["forced_photometry"]["parent_candid"].dtype == "Int64"
    assert len(state["non_detection"]) == 9 and len(state["object"]) == 3 and len(state["magstat"]) == 6
    empty = store.load_state([])
    assert all(len(f) == 0 for f in empty.values())
    assert empty["detection"]["candid"].dtype == np.int64


def test_load_state_column_subset(store):
    tables = make_tables(seed=2)
    store.write(tables)
    oids = list(tables["object"]["oid"][:2])
    state = store.load_state(oids, columns={"detection": ["oid", "candid", "parent_candid"]})
    assert list(state["detection"].columns) == ["oid", "candid", "parent_candid"]
    full = store.load_state(oids)["detection"]
    pd.testing.assert_frame_equal(
        state["detection"].sort_values(["oid", "candid"]).reset_index(drop=True),
        full[["oid", "candid", "parent_candid"]].sort_values(["oid", "candid"]).reset_index(drop=True))
    assert list(state["object"].columns) == list(METADATA.tables["object"].c.keys())
    with pytest.raises(KeyError):
        store.load_state(oids, columns={"detection": ["oid", "no_such_column"]})
    with pytest.raises(KeyError):
        store.load_state(oids, columns={"no_such_table": ["oid"]})


def test_load_state_lower_bound_reads_only_rows_from_it(store):
    tables = make_tables(seed=3)
    oids = list(tables["object"]["oid"])
    pids = np.arange(10, dtype=np.int64) + 10**11
    store.write({"forced_photometry": pd.DataFrame({
        "oid": np.repeat(oids[:2], 5), "pid": pids, "mjd": 58000.0 + np.arange(10), "fid": 1,
        "parent_candid": pd.array(np.arange(10), dtype="Int64")}), "detection": tables["detection"]})
    bound = int(pids[3])
    state = store.load_state(oids, at_least={"forced_photometry": ("pid", np.int64(bound))})
    fp = state["forced_photometry"]
    assert sorted(fp["pid"].tolist()) == [int(p) for p in pids if p >= bound]  # both objects' rows
    assert set(fp["oid"]) == set(oids[:2])
    assert len(state["detection"]) == len(tables["detection"])  # other tables are read whole
    skipped = store.load_state(oids, at_least={"forced_photometry": ("pid", None)})
    assert len(skipped["forced_photometry"]) == 0 and list(skipped["forced_photometry"].columns) == \
        list(METADATA.tables["forced_photometry"].c.keys())
    with pytest.raises(KeyError):
        store.load_state(oids, at_least={"forced_photometry": ("no_such_column", 1)})


def test_load_state_many_objects(store):
    det = make_detections(n_obj=3000, n_per=2, seed=5)
    store.write({"detection": det})
    oids = pd.unique(det["oid"])[::2]
    state = store.load_state(oids)
    assert len(state["detection"]) == 2 * len(oids)
    assert set(state["detection"]["oid"]) == set(oids)


def _state_tables_with_awkward_columns() -> dict[str, pd.DataFrame]:
    """State rows whose columns start NULL for > 1,024 rows then hold values, or are all NULL."""
    tables = make_tables(seed=7)
    det = make_detections(n_obj=30, n_per=50, seed=8)
    det = det.sort_values(["oid", "candid"]).reset_index(drop=True)
    det["rfid"] = pd.array([pd.NA] * 1200 + list(range(len(det) - 1200)), dtype="Int64")
    det["magpsf_corr"] = [np.nan] * 1300 + list(np.linspace(15, 20, len(det) - 1300))
    det["corrected"] = pd.array([pd.NA] * 1100 + [True, False] * ((len(det) - 1100) // 2), dtype="boolean")
    tables["detection"] = det
    oids = pd.unique(det["oid"])
    n_fp = 1500
    tables["forced_photometry"] = pd.DataFrame({
        "oid": np.resize(oids, n_fp), "pid": np.arange(n_fp, dtype=np.int64) + 10**11,
        "mjd": 58000.0 + np.arange(n_fp), "fid": np.ones(n_fp, int),
        "procstatus": [None] * 1100 + ["0", "56"] * 200,  # text that starts NULL
        "parent_candid": pd.array([pd.NA] * n_fp, dtype="Int64")})
    tables["ps1_ztf"] = pd.DataFrame({"oid": oids, "candid": np.arange(len(oids), dtype=np.int64),
                                      "objectidps1": pd.array([pd.NA] * len(oids), dtype="Int64"),
                                      "sgscore1": np.full(len(oids), np.nan)})  # all NULL
    tables["reference"] = pd.DataFrame({"oid": oids[:3], "rfid": np.arange(3, dtype=np.int64),
                                        "candid": np.arange(3, dtype=np.int64), "magnr": [np.nan, 17.0, 18.0]})
    return tables


def test_columnar_and_row_reads_give_identical_state(tmp_path, caplog):
    pytest.importorskip("adbc_driver_sqlite")
    caplog.set_level("DEBUG", logger="alerce.store.store")
    from alerce.store.arrow_reader import ArrowReader

    url = f"sqlite:///{tmp_path / 's.db'}"
    tables = _state_tables_with_awkward_columns()
    with Store(url) as columnar, Store(url, arrow_reads=False) as rows:
        columnar.write(tables)
        oids = list(pd.unique(tables["detection"]["oid"])) + list(tables["object"]["oid"])
        for kwargs in ({}, {"columns": {"detection": ["oid", "candid", "rfid", "corrected"]}},
                       {"at_least": {"forced_photometry": ("pid", None)}}):
            a, b = columnar.load_state(oids, **kwargs), rows.load_state(oids, **kwargs)
            assert isinstance(columnar._arrow, ArrowReader) and rows._arrow is None
            for name in STATE_TABLES:
                pd.testing.assert_frame_equal(a[name], b[name], obj=name)
        assert columnar.load_state(["not_stored"])["detection"].dtypes.equals(
            rows.load_state(["not_stored"])["detection"].dtypes)
    assert "columnar read failed" not in caplog.text  # the columnar path itself gave those frames


def test_failed_columnar_read_falls_back_to_rows(tmp_path, monkeypatch):
    pytest.importorskip("adbc_driver_sqlite")
    from alerce.store import arrow_reader

    calls = []

    def broken(self, queries):
        calls.append(len(queries))
        raise OSError("[SQLite] Type mismatch in column 0")

    monkeypatch.setattr(arrow_reader.ArrowReader, "read", broken)
    tables = make_tables(seed=9)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as st:
        st.write(tables)
        state = st.load_state(tables["object"]["oid"])
    assert calls and len(state["detection"]) == len(tables["detection"])


def test_golden_corrected_detections_round_trip(store):
    path = shared("golden", "alerce_lc_correction", "10_objects_corrected.parquet")
    nd_path = shared("golden", "alerce_lc_correction", "10_objects_non_detections.parquet")
    det = pd.read_parquet(path).rename(columns={"objectId": "oid"})
    nd = pd.read_parquet(nd_path).rename(columns={"objectId": "oid"})
    nd["mjd"] = nd.pop("jd") - MJD_OFFSET
    nd = nd.drop_duplicates(["oid", "fid", "mjd"])
    written = store.write({"detection": det, "non_detection": nd})
    assert written == {"detection": len(det), "non_detection": len(nd)}
    state = store.load_state(pd.unique(det["oid"]))
    back = sort_frame(state["detection"], "detection")
    exp = sort_frame(det, "detection")
    cols = [c for c in DETECTION_COLUMNS + CORRECTED if c in det.columns]
    for col in cols:
        if pd.api.types.is_float_dtype(exp[col].dtype) and col != "isdiffpos":
            np.testing.assert_array_equal(back[col].to_numpy(), exp[col].to_numpy(dtype="float64"), err_msg=col)
        else:
            assert back[col].astype("int64" if col in ("isdiffpos", "parent_candid") else object).tolist() \
                == exp[col].astype("int64" if col in ("isdiffpos", "parent_candid") else object).tolist(), col
    nd_back = sort_frame(state["non_detection"], "non_detection")
    np.testing.assert_array_equal(nd_back["mjd"].to_numpy(), sort_frame(nd, "non_detection")["mjd"].to_numpy())


def test_a_bad_row_rolls_back_the_whole_write(store):
    good = make_tables()
    bad_object = pd.DataFrame({"oid": ["fine", None], "ndet": [1, 2]})
    tables = {"detection": good["detection"], "feature": good["feature"], "object": bad_object}
    with pytest.raises(StoreWriteError, match=r"'object'.*rolled back"):
        store.write(tables)
    for name in ("detection", "feature", "object"):
        assert store.count(name) == 0, name
    # the store is still usable afterwards
    assert store.write({"object": bad_object.iloc[:1]}) == {"object": 1}


def test_values_that_do_not_fit_are_reported_and_nothing_is_written(store):
    det = make_detections()
    det["magpsf"] = det["magpsf"].astype(object)
    det.loc[3, "magpsf"] = "bright"
    with pytest.raises(StoreDataError, match=r"table 'detection', column 'magpsf', row 3: 'bright'"):
        store.write({"object": pd.DataFrame({"oid": ["x"]}), "detection": det})
    with pytest.raises(StoreDataError, match="column 'fid'.*integer"):
        store.write({"detection": pd.DataFrame({"oid": ["a"], "candid": [1], "fid": [1.5]})})
    with pytest.raises(StoreDataError, match="primary-key"):
        store.write({"detection": pd.DataFrame({"oid": ["a"], "mjd": [1.0]})})
    assert store.count("object") == 0 and store.count("detection") == 0


def test_unknown_table_is_refused(store):
    with pytest.raises(KeyError, match="unknown table 'detections'"):
        store.write({"detections": pd.DataFrame({"oid": ["a"]})})
    # private hand-off frames and empty frames are skipped
    assert store.write({"_features": pd.DataFrame({"x": [1]}), "object": pd.DataFrame()}) == {}


def test_taxonomy_step_and_pipeline(store):
    store.write({"taxonomy": pd.DataFrame({"classifier_name": ["lc"], "classifier_version": ["1.0"],
                                           "classes": [["SNIa", "SNII", "AGN"]]})})
    assert store.read_table("taxonomy")["classes"].iloc[0] == ["SNIa", "SNII", "AGN"]
    store.register_step("corr_1", "correction", "1.0", "first")
    store.register_step("corr_1", "correction", "1.1", "again")
    store.register_pipeline("p1", step_id_corr="corr_1")
    steps = store.read_table("step")
    assert steps[["step_id", "version", "comments"]].values.tolist() == [["corr_1", "1.1", "again"]]
    assert pd.api.types.is_datetime64_any_dtype(steps["date"])
    assert store.read_table("pipeline", where={"pipeline_id": "p1"})["step_id_corr"].tolist() == ["corr_1"]


def test_read_table_filters(store):
    store.write(make_tables())
    det = store.read_table("detection", where={"oid": ["ZTF20obj0001", "ZTF20obj0003"], "fid": 1},
                           columns=["oid", "candid", "fid"])
    assert list(det.columns) == ["oid", "candid", "fid"]
    assert set(det["oid"]) == {"ZTF20obj0001", "ZTF20obj0003"} and set(det["fid"]) == {1}
    with pytest.raises(KeyError):
        store.read_table("detection", columns=["nope"])
    many = list(range(40_000)) + store.read_table("detection")["candid"].tolist()  # longer than SQLite's parameter limit
    assert len(store.read_table("detection", where={"candid": many})) == store.count("detection")
    assert len(store.read_table("detection", where={"candid": np.array(many[:10])})) == 0


# ------------------------------------------------------------------------------------------------
# schema versions
# ------------------------------------------------------------------------------------------------

def _add_column_migration(conn):
    conn.exec_driver_sql("ALTER TABLE object ADD COLUMN upgraded_flag INTEGER")


def test_version_check_and_upgrade(url, monkeypatch):
    current = store_version.SCHEMA_VERSION
    Store(url).close()  # created at the current version
    monkeypatch.setattr(store_version, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(store_version, "MIGRATIONS", store_version.MIGRATIONS + [
        Migration(current + 1, "add object.upgraded_flag", _add_column_migration)])
    with pytest.raises(StoreVersionError,
                       match=rf"schema version {current}.*needs version {current + 1}.*alerce db upgrade"):
        Store(url)
    assert upgrade(url) == current + 1
    with Store(url) as st:
        assert st.schema_version == current + 1
        with st.engine.connect() as conn:
            cols = {c["name"] for c in sa.inspect(conn).get_columns("object")}
            versions = conn.execute(sa.text("SELECT version FROM schema_version ORDER BY version")).scalars().all()
        assert "upgraded_flag" in cols
        assert versions == [current, current + 1]
    assert upgrade(url) == current + 1  # nothing left to do


def _sqlite_tables_without_rowid(engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
    return {name for name, ddl in rows if "WITHOUT ROWID" in ddl.upper()}


def test_upgrade_from_version_1_keeps_every_row(url, monkeypatch):
    """A store written at version 1 (every SQLite table with a rowid) upgrades to the current
    schema with the same rows and indexes; on SQLite the narrow tables lose their rowid."""
    from alerce.store.schema import SQLITE_WITHOUT_ROWID, build_metadata

    with monkeypatch.context() as m:  # what the version-1 code created
        m.setattr(store_version, "SCHEMA_VERSION", 1)
        m.setattr(store_version, "METADATA", build_metadata(sqlite_without_rowid=False))
        with Store(url) as st:
            assert st.schema_version == 1
            st.write(make_tables())
            before = {name: sort_frame(st.read_table(name), name) for name in make_tables()}
            if st.engine.dialect.name == "sqlite":
                assert _sqlite_tables_without_rowid(st.engine) == set()
    with pytest.raises(StoreVersionError, match="alerce db upgrade"):
        Store(url)
    assert upgrade(url) == store_version.SCHEMA_VERSION
    with Store(url) as st:
        for name, frame in before.items():
            pd.testing.assert_frame_equal(sort_frame(st.read_table(name), name), frame)
        with st.engine.connect() as conn:
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("probability")}
        assert "ix_probability_rank1" in indexes
        if st.engine.dialect.name == "sqlite":
            assert _sqlite_tables_without_rowid(st.engine) == set(SQLITE_WITHOUT_ROWID)
        again = make_tables(seed=1)  # same keys, new values: the rebuilt tables take upserts
        st.write(again)
        for name in SQLITE_WITHOUT_ROWID:
            if name in again:
                got = sort_frame(st.read_table(name), name)
                pd.testing.assert_frame_equal(got, sort_frame(again[name], name), check_dtype=False)


def test_new_sqlite_store_has_the_narrow_tables_without_rowid(tmp_path):
    from alerce.store.schema import SQLITE_WITHOUT_ROWID

    with Store(f"sqlite:///{tmp_path / 'new.db'}") as st:
        assert _sqlite_tables_without_rowid(st.engine) == set(SQLITE_WITHOUT_ROWID)


def test_store_from_a_newer_version_is_refused(url):
    with Store(url) as st, st.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version (version, description) VALUES (99, 'future')"))
    with pytest.raises(StoreVersionError, match="newer"):
        Store(url)


def test_upgrade_creates_an_empty_store(url):
    assert upgrade(url) == store_version.SCHEMA_VERSION
    with Store(url, create=False) as st:
        assert st.count("detection") == 0


def test_missing_migration_is_reported(url, monkeypatch):
    Store(url).close()
    current = store_version.SCHEMA_VERSION
    monkeypatch.setattr(store_version, "SCHEMA_VERSION", current + 2)
    with pytest.raises(StoreVersionError, match=f"no migration from schema version {current} to {current + 1}"):
        upgrade(url)


def test_unversioned_database_is_refused(tmp_path):
    path = tmp_path / "foreign.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE detection (oid TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreVersionError, match="no schema_version"):
        Store(f"sqlite:///{path}")


def test_postgres_has_q3c_index(request):
    pg = request.getfixturevalue("pg_url")
    with Store(pg) as st, st.engine.connect() as conn:
        has_ext = conn.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name='q3c'").first()
        if not has_ext:
            pytest.skip("q3c extension not installed on this PostgreSQL")
        idx = conn.exec_driver_sql(
            "SELECT indexdef FROM pg_indexes WHERE tablename='object' AND indexname='ix_object_q3c'").scalar()
        assert "q3c_ang2ipix" in idx
        st.write({"object": pd.DataFrame({"oid": ["near", "far"], "meanra": [10.0, 50.0], "meandec": [5.0, 5.0]})})
        got = conn.exec_driver_sql(
            "SELECT oid FROM object WHERE q3c_radial_query(meanra, meandec, 10.0001, 5.0, 0.01)").scalars().all()
        assert got == ["near"]


@pytest.mark.parametrize("method", ["copy", "executemany"])
def test_postgres_write_paths_agree(request, method):
    pg = request.getfixturevalue("pg_url")
    tables = make_tables(seed=7)
    with Store(pg, pg_method=method, chunk_size=13) as st:
        st.write(tables)
        st.write(tables)
        for name, frame in tables.items():
            assert st.count(name) == len(frame)
        back = sort_frame(st.read_table("detection"), "detection")
    exp = sort_frame(tables["detection"], "detection")
    for col in ("mjd", "magpsf", "magpsf_corr", "diffmaglim"):
        np.testing.assert_array_equal(back[col].to_numpy(), exp[col].to_numpy(dtype="float64"), err_msg=col)
    assert back["candid"].tolist() == exp["candid"].tolist()


# ------------------------------------------------------------------------------------------------
# concurrency
# ------------------------------------------------------------------------------------------------

def _writer(url: str, seed: int, barrier, errors) -> None:
    try:
        st = Store(url, busy_timeout=60)
        barrier.wait(timeout=60)
        for rep in range(6):
            tables = make_tables(seed=seed % 2)  # two writers share their keys
            det = make_detections(n_obj=40, n_per=25, seed=10 + rep, prefix=f"ZTF21w{seed}r")
            tables["detection"] = pd.concat([tables["detection"], det], ignore_index=True)
            tables["ss_ztf"] = pd.DataFrame({"oid": ["shared"], "candid": [seed * 10 + rep], "ssnamenr": [str(seed)]})
            st.write(tables)
            st.load_state(pd.unique(tables["detection"]["oid"])[:20])
        st.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"writer {seed}: {type(exc).__name__}: {exc}")


def test_concurrent_writers(url):
    Store(url).close()  # schema exists; the writers still race on opening
    ctx = mp.get_context("fork")
    n = 3
    barrier, errors = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, seed, barrier, errors)) for seed in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.kill()
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert not alive, "writers hung"
    assert not messages, messages
    assert all(p.exitcode == 0 for p in procs)
    with Store(url) as st:
        # every writer's own rows plus the shared ones, once each
        all_dets = [make_detections(seed=0), make_detections(seed=1)] + [
            make_detections(n_obj=40, n_per=25, seed=10 + rep, prefix=f"ZTF21w{s}r")
            for s in range(n) for rep in range(6)]
        assert st.count("detection") == len(pd.concat(all_dets).drop_duplicates(["oid", "candid"]))
        assert st.read_table("ss_ztf")["candid"].tolist() == [max(s * 10 + 5 for s in range(n))]
        assert st.count("object") == len(pd.unique(pd.concat([make_tables(0)["object"]["oid"],
                                                               make_tables(1)["object"]["oid"]])))


def _open_and_write(url: str, seed: int, barrier, errors) -> None:
    try:
        barrier.wait(timeout=60)
        with Store(url) as st:  # all processes race to create the schema
            st.write({"object": pd.DataFrame({"oid": [f"o{seed}", "shared"], "ndet": [seed, seed]})})
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"process {seed}: {type(exc).__name__}: {exc}")


def test_processes_racing_to_create_a_store(url):
    ctx = mp.get_context("fork")
    n = 3
    barrier, errors = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_open_and_write, args=(url, s, barrier, errors)) for s in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert not messages, messages
    assert all(p.exitcode == 0 for p in procs)
    with Store(url) as st:
        assert sorted(st.read_table("object")["oid"]) == ["o0", "o1", "o2", "shared"]
        with st.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT COUNT(*) FROM schema_version")).scalar() == 1


def test_opening_waits_while_another_process_holds_the_write_lock_of_a_new_file(tmp_path):
    # A new file is in rollback-journal mode; switching it to WAL while another connection holds
    # the write lock made SQLite answer "database is locked" at once, skipping the busy timeout
    # (CI failure of test_processes_racing_to_create_a_store). Opening must wait instead.
    path = tmp_path / "store.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    release = threading.Timer(0.3, holder.execute, args=("COMMIT",))
    release.start()
    try:
        with Store(f"sqlite:///{path}") as st:
            st.write({"object": pd.DataFrame({"oid": ["o1"], "ndet": [1]})})
            assert st.read_table("object")["oid"].tolist() == ["o1"]
        assert release.finished.is_set()
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        holder.close()


def test_write_reports_how_long_it_waited_for_the_write_lock(tmp_path):
    path = tmp_path / "store.db"
    with Store(f"sqlite:///{path}") as st:
        st.write({"object": pd.DataFrame({"oid": ["o0"], "ndet": [1]})})
        assert 0.0 <= st.last_write_wait < 0.5  # nobody else writes
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 0.8 s
        release = threading.Timer(0.8, holder.execute, args=("COMMIT",))
        release.start()
        try:
            st.write({"object": pd.DataFrame({"oid": ["o1"], "ndet": [1]})})
        finally:
            release.join()
            holder.close()
        assert st.last_write_wait >= 0.4
        assert sorted(st.read_table("object")["oid"]) == ["o0", "o1"]


def _child_write(store: Store, errors) -> None:
    try:
        store.write({"object": pd.DataFrame({"oid": ["child"], "ndet": [1]})})
    except BaseException as exc:  # noqa: BLE001
        errors.put(f"{type(exc).__name__}: {exc}")


def test_store_object_survives_fork(store):
    store.write({"object": pd.DataFrame({"oid": ["parent"], "ndet": [1]})})
    ctx = mp.get_context("fork")
    errors = ctx.Queue()
    p = ctx.Process(target=_child_write, args=(store, errors))
    p.start()
    p.join(timeout=120)
    assert errors.empty() and p.exitcode == 0
    store.write({"object": pd.DataFrame({"oid": ["parent2"], "ndet": [1]})})
    assert sorted(store.read_table("object")["oid"]) == ["child", "parent", "parent2"]


def test_store_pickles_as_its_url(store):
    import pickle

    store.write({"object": pd.DataFrame({"oid": ["p"], "ndet": [3]})})
    with pickle.loads(pickle.dumps(store)) as copy:
        assert copy.url == store.url and copy.engine is not store.engine
        assert copy.read_table("object")["ndet"].tolist() == [3]


def test_empty_store_without_create_is_refused(tmp_path):
    from alerce.store import StoreError

    with pytest.raises(StoreError, match="empty and create=False"):
        Store(f"sqlite:///{tmp_path / 'none.db'}", create=False)


def test_bad_urls_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unsupported store URL"):
        Store("mysql://u@h/db")
    with pytest.raises(ValueError, match="psycopg 3"):
        Store("postgresql+psycopg2://u@h/db")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Store(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


def test_store_url_hides_password():
    pytest.importorskip("psycopg")
    with pytest.raises(Exception) as info:
        Store("postgresql://alerce:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(info.value)


def test_write_several_frames_per_table_keeps_columns_a_frame_lacks(store):
    full = pd.DataFrame({"oid": ["a", "b"], "candid": [1, 2], "magpsf": [18.0, 19.0], "rb": [0.9, 0.8]})
    store.write({"detection": full})
    again = pd.DataFrame({"oid": ["b", "c"], "candid": [2, 3], "magpsf": [19.5, 17.0], "rb": [0.7, 0.6]})
    partial = pd.DataFrame({"oid": ["a"], "candid": [1], "magpsf": [18.5]})  # no rb: keeps 0.9
    counts = store.write({"detection": [again, partial], "object": []})
    assert counts == {"detection": 3}
    got = store.read_table("detection").sort_values("candid")
    assert got["magpsf"].tolist() == [18.5, 19.5, 17.0] and got["rb"].tolist() == [0.9, 0.7, 0.6]
