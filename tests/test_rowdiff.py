"""Key matching and changed-row detection (alerce.streams.rowdiff) against pandas merges."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alerce.streams.rowdiff import changed_rows, match_rows, not_stored_earlier


def _frames(seed: int, n_new: int = 400, n_old: int = 300):
    rng = np.random.default_rng(seed)

    def frame(n):
        oid = pd.Series(rng.choice(["ZTF1a", "ZTF1b", "ZTF2c", "ZTF3d"], n), dtype="str")
        candid = pd.array(rng.integers(0, 60, n), dtype="Int64")
        candid[rng.random(n) < 0.05] = pd.NA  # null keys match null keys, as in a merge
        return pd.DataFrame({
            "oid": oid, "candid": candid,
            "mjd": rng.choice([58000.5, 58001.25, np.nan], n),
            "corrected": pd.array(rng.choice([True, False, None], n), dtype="boolean"),
            "dubious": rng.random(n) < 0.5,
            "parent_candid": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 5, n)), dtype="Int64"),
        })

    new, old = frame(n_new), frame(n_old)
    return new, old.drop_duplicates(["oid", "candid", "mjd"]).reset_index(drop=True)


def _reference_changed(result, stored, key, compare):
    """The merge-based rule: new key, or a compared column differs (null vs value differs)."""
    cols = [c for c in compare if c in stored.columns]
    old = stored[key + cols].rename(columns={c: f"{c}__old" for c in cols})
    merged = result.merge(old, on=key, how="left", indicator=True)
    changed = merged["_merge"].eq("left_only").to_numpy(copy=True)
    for c in cols:
        new_v, old_v = merged[c], merged[f"{c}__old"]
        if new_v.dtype == bool or str(new_v.dtype) == "boolean":
            new_v, old_v = new_v.astype("boolean"), old_v.astype("boolean")
        else:
            new_v, old_v = new_v.astype("Int64"), old_v.astype("Int64")
        changed |= (new_v.isna() != old_v.isna()).to_numpy(dtype=bool)
        changed |= new_v.ne(old_v).fillna(False).to_numpy(dtype=bool)
    return result[changed].reset_index(drop=True)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("key", [["oid", "candid"], ["oid", "candid", "mjd"], ["candid"]])
def test_changed_rows_match_a_pandas_merge(seed, key):
    new, old = _frames(seed)
    old = old.drop_duplicates(key).reset_index(drop=True)
    compare = ["corrected", "dubious", "parent_candid"]
    got = changed_rows(new, old, key, compare)
    exp = _reference_changed(new, old, key, compare)
    assert 0 < len(got) < len(new)
    pd.testing.assert_frame_equal(got, exp)


def test_match_rows_positions_and_misses():
    left = pd.DataFrame({"oid": ["a", "b", "c", "a"], "pid": [1, 2, 3, 2]})
    right = pd.DataFrame({"oid": ["a", "a", "c"], "pid": [2, 1, 4]})
    assert match_rows(left, right, ["oid", "pid"]).tolist() == [1, -1, -1, 0]
    assert match_rows(left, right.iloc[:0], ["oid", "pid"]).tolist() == [-1] * 4
    assert match_rows(left.iloc[:0], right, ["oid", "pid"]).tolist() == []


def test_codes_stay_exact_when_key_products_exceed_int64():
    n = 3000  # 3000^3 distinct-value product > 2^62 before the renumbering
    rng = np.random.default_rng(1)
    left = pd.DataFrame({k: rng.permutation(n).astype(np.int64) for k in "abc"})
    right = left.sample(frac=0.5, random_state=2).reset_index(drop=True)
    got = match_rows(left, right, ["a", "b", "c"])
    exp = left.merge(right.reset_index(), on=["a", "b", "c"], how="left")["index"].fillna(-1).astype(int)
    assert got.tolist() == exp.tolist()


def test_not_stored_earlier_keeps_new_and_later_stored_rows():
    new = pd.DataFrame({"oid": ["a", "a", "b", "c"], "pid": [1, 2, 1, 1],
                        "parent_candid": pd.array([10, 10, 10, pd.NA], dtype="Int64")})
    stored = pd.DataFrame({"oid": ["a", "a", "c"], "pid": [1, 2, 1],
                           "parent_candid": pd.array([10, 12, 5], dtype="Int64")})
    got = not_stored_earlier(new, stored, ["oid", "pid"], "parent_candid")
    # (a,1) stored from the same alert: skipped; (a,2) stored from a later alert: rewritten;
    # (b,1) not stored; (c,1) has no parent to compare: written
    assert list(zip(got["oid"], got["pid"])) == [("a", 2), ("b", 1), ("c", 1)]
