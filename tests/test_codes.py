"""Integer key codes and run statistics against pandas' own sort, groupby and drop_duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from alerce.codes import first_rows, run_starts, sort_order, sorted_codes
from alerce.correction._util import group_stats
from alerce.store.convert import prepare


@pytest.mark.parametrize("nulls", ["first", "last"])
@pytest.mark.parametrize("arrow", [True, False])
def test_sorted_codes_order_like_the_values(nulls, arrow):
    rng = np.random.default_rng(3)
    raw = rng.choice(["ZTF20b", "ZTF19a", "ZTF21c", "ZTF18z", None], 200)
    values = pd.array(raw, dtype="str") if arrow else raw.astype(object)
    codes, uniques = sorted_codes(values, nulls)
    assert list(uniques) == ["ZTF18z", "ZTF19a", "ZTF20b", "ZTF21c"]
    null = pd.isna(pd.Series(raw)).to_numpy()
    assert (codes[null] == (-1 if nulls == "first" else 4)).all()
    assert [uniques[c] for c in codes[~null]] == list(raw[~null])
    # the codes sort the rows exactly as pandas sorts the values
    order = np.argsort(codes, kind="stable")
    expected = pd.Series(raw).sort_values(kind="mergesort", na_position=nulls).index.to_numpy()
    np.testing.assert_array_equal(order, expected)


def _random_frame(rng, n):
    """Keys with repeats and nulls of every kind the pipeline sorts: Arrow strings, Int64, floats, bools."""
    oid = rng.choice(["ZTF20b", "ZTF19a", "ZTF21c", None], n)
    return pd.DataFrame({
        "oid": pd.array(oid, dtype="str"),
        "candid": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 6, n)), dtype="Int64"),
        "mjd": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, n) / 2),
        "flag": rng.random(n) < 0.5,
    })


@pytest.mark.parametrize("nulls", ["first", "last"])
def test_sort_order_equals_pandas_stable_sort(nulls):
    rng = np.random.default_rng(11)
    for trial in range(60):
        frame = _random_frame(rng, int(rng.integers(0, 80)))
        keys = list(rng.permutation(frame.columns)[:int(rng.integers(1, 5))])
        ascending = [bool(a) for a in rng.random(len(keys)) < 0.5]
        expected = frame.reset_index(drop=True).sort_values(keys, ascending=ascending, kind="mergesort",
                                                            na_position=nulls).index.to_numpy()
        ours = sort_order(frame, keys, ascending, nulls)
        np.testing.assert_array_equal(ours, expected, err_msg=f"{trial}: {keys} {ascending}")
        # the same from a mapping of arrays
        arrays = {k: frame[k].array for k in keys}
        np.testing.assert_array_equal(sort_order(arrays, keys, ascending, nulls), expected)


@pytest.mark.parametrize("nulls", ["first", "last"])
def test_first_rows_equal_sort_then_drop_duplicates(nulls):
    rng = np.random.default_rng(13)
    for trial in range(60):
        frame = _random_frame(rng, int(rng.integers(0, 80)))
        columns = list(rng.permutation(frame.columns))
        n_keys = int(rng.integers(1, 4))
        keys, by = columns[:n_keys], columns[n_keys:]
        ascending = [bool(a) for a in rng.random(len(columns)) < 0.5]
        ascending[:n_keys] = [True] * n_keys  # the result is in ascending key order
        expected = (frame.sort_values([*keys, *by], ascending=ascending, kind="mergesort", na_position=nulls)
                    .drop_duplicates(keys).index.to_numpy())
        ours = first_rows(frame, keys, by, ascending, nulls)
        np.testing.assert_array_equal(ours, expected, err_msg=f"{trial}: {keys} {by} {ascending}")


def test_group_stats_equal_pandas_groupby_with_nans():
    rng = np.random.default_rng(5)
    gid = np.sort(rng.integers(0, 40, 500))
    values = rng.normal(18, 2, 500)
    values[rng.random(500) < 0.3] = np.nan
    values[gid == 7] = np.nan  # a group without any value
    starts = run_starts(gid)
    dense = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(gid)]))
    ours = group_stats(values, starts, dense)
    theirs = pd.Series(values).groupby(gid).agg(["mean", "median", "max", "min", "std"])
    for stat in ("mean", "median", "max", "min", "std"):
        np.testing.assert_allclose(ours[stat], theirs[stat].to_numpy(), rtol=1e-12, equal_nan=True, err_msg=stat)


def _pandas_prepare(df, key, guard):
    """What prepare must equal: sequential upserts of the rows, then key order."""
    sub = df.sort_values(guard, kind="mergesort", na_position="first") if guard else df
    return sub.drop_duplicates(key, keep="last").sort_values(key, kind="mergesort")


@pytest.mark.parametrize("guard", [None, "candid"])
def test_prepare_keeps_what_sequential_upserts_keep_in_key_order(guard):
    rng = np.random.default_rng(7)
    table = sa.Table("t", sa.MetaData(), sa.Column("oid", sa.String, primary_key=True),
                     sa.Column("fid", sa.Integer, primary_key=True), sa.Column("candid", sa.BigInteger),
                     sa.Column("v", sa.Float))
    for trial in range(100):
        n = int(rng.integers(0, 50))
        oids = rng.choice(["a", "b", "c"], n)
        df = pd.DataFrame({
            "oid": pd.array(oids, dtype="str") if trial % 2 else oids.astype(object),
            "fid": rng.integers(1, 4, n),
            "candid": np.where(rng.random(n) < 0.2, np.nan, rng.integers(0, 5, n).astype(float)),
            "v": rng.random(n),
            "not_a_column": 1,
        })
        cols, ours = prepare(df, table, guard)
        assert cols == ["oid", "fid", "candid", "v"]
        theirs = _pandas_prepare(df[cols], ["oid", "fid"], guard)
        pd.testing.assert_frame_equal(ours, theirs)


def _pandas_ps1_rows(alerts, stored):
    """The PS1 rule as pandas states it: the last row of each (oid, candid), ``unique<k>`` while an object's
    rows name at most one k-th neighbour (nulls ignored), stored rows written only when a flag changed."""
    rows = pd.concat([stored, alerts], ignore_index=True)
    from_store = np.arange(len(rows)) < len(stored)
    keep = ~rows.duplicated(["oid", "candid"], keep="last").to_numpy()
    rows, from_store = rows[keep].reset_index(drop=True), from_store[keep]
    write = ~from_store
    for k in (1, 2, 3):
        flag = rows.groupby("oid")[f"objectidps{k}"].transform("nunique").le(1).to_numpy()
        old = rows[f"unique{k}"]
        write |= ~(old.notna().to_numpy() & (old.astype("boolean").fillna(False).to_numpy(dtype=bool) == flag))
        rows[f"unique{k}"] = flag
    return rows, write


def test_ps1_unique_flags_follow_pandas_nunique_rule():
    from alerce.streams.steps import _ps1_rows

    rng = np.random.default_rng(17)
    for trial in range(40):
        def frame(n, stored):
            out = pd.DataFrame({"oid": pd.array(rng.choice(["ZTFa", "ZTFb", "ZTFc"], n), dtype="str"),
                                "candid": rng.integers(0, 8, n)})
            for k in (1, 2, 3):
                ids = rng.choice([11.0, 12.0, np.nan], n, p=[0.6, 0.2, 0.2])
                out[f"objectidps{k}"] = pd.array(np.where(np.isnan(ids), None, ids), dtype="Int64")
                if stored:
                    out[f"unique{k}"] = rng.random(n) < 0.5
            return out

        alerts, stored = frame(int(rng.integers(1, 15)), False), frame(int(rng.integers(1, 15)), True)
        ours, write = _ps1_rows(alerts, stored)
        theirs, their_write = _pandas_ps1_rows(alerts, stored)
        key = ["oid", "candid"]
        order_ours = ours[key].assign(w=write).sort_values(key, kind="mergesort")
        order_theirs = theirs[key].assign(w=their_write).sort_values(key, kind="mergesort")
        np.testing.assert_array_equal(order_ours["w"].to_numpy(), order_theirs["w"].to_numpy())
        for k in (1, 2, 3):
            for column in (f"objectidps{k}", f"unique{k}"):  # the kept row's values, then the flags
                got = ours.set_index(key)[column].sort_index()
                expected = theirs.set_index(key)[column].sort_index()
                pd.testing.assert_series_equal(got, expected, check_dtype=False, obj=f"{trial} {column}")
            got = ours.set_index(key)[f"unique{k}"].sort_index()
            expected = theirs.set_index(key)[f"unique{k}"].sort_index()
            np.testing.assert_array_equal(got.to_numpy(dtype=bool), expected.to_numpy(dtype=bool), err_msg=str(trial))
        assert ours.set_index(key).index.sort_values().equals(theirs.set_index(key).index.sort_values())
