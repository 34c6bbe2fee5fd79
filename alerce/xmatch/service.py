"""The cross-match service of the ALeRCE paper: a user's catalog (id, ra, dec) against the store's
objects, returning the nearest object within a radius with its object columns."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa

from alerce.query.cone import PAD_DEG
from alerce.store import METADATA, Store
from alerce.store.convert import frame_from_rows

from .catalog import read_table_file
from .match import match_pairs

#: Declination height (degrees) of the strips in which the store is read.
STRIP_DEG = 2.0


def _objects_in_strip(store: Store, lo: float, hi: float) -> pd.DataFrame:
    obj = METADATA.tables["object"]
    stmt = sa.select(obj.c.oid, obj.c.meanra, obj.c.meandec).where(
        obj.c.meandec >= lo, obj.c.meandec <= hi)
    with store.engine.connect() as conn:
        res = conn.execute(stmt)
        return frame_from_rows(res.fetchall(), list(res.keys()), obj)


def match_user_catalog(user: str | os.PathLike | pd.DataFrame, store: str | Store, radius_arcsec: float = 2.0,
                       *, id_col: str = "id", ra_col: str = "ra", dec_col: str = "dec",
                       keep_unmatched: bool = True) -> pd.DataFrame:
    """Nearest store object within ``radius_arcsec`` of each user source.

    Parameters
    ----------
    user : path or DataFrame
        CSV/FITS/Parquet file or frame with ``id_col, ra_col, dec_col`` (degrees).
    store : str or Store
    radius_arcsec : float
    keep_unmatched : bool
        Keep user rows without a match (object columns null).

    Returns
    -------
    DataFrame
        The user's ``id, ra, dec``, then ``oid``, ``dist`` (arcsec) and every ``object`` column
        (``meanra, meandec, ndet, firstmjd, ...``), in the user's row order.

    Raises
    ------
    KeyError
        A user column is missing (the message lists the file's columns).
    ValueError
        Negative radius or invalid positions (the message names the first bad row).
    """
    df = user if isinstance(user, pd.DataFrame) else read_table_file(user)
    missing = [c for c in (id_col, ra_col, dec_col) if c not in df.columns]
    if missing:
        raise KeyError(f"user catalog lacks column(s) {missing}; columns: {list(df.columns)}")
    if radius_arcsec is None or not np.isfinite(radius_arcsec) or radius_arcsec < 0:
        raise ValueError(f"radius_arcsec must be a finite number >= 0, got {radius_arcsec!r}")
    ra = pd.to_numeric(df[ra_col], errors="coerce").to_numpy("float64")
    dec = pd.to_numeric(df[dec_col], errors="coerce").to_numpy("float64")
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"user catalog: {int(bad.sum())} row(s) with invalid positions, first at row {i}: "
                         f"{ra_col}={df[ra_col].iloc[i]!r}, {dec_col}={df[dec_col].iloc[i]!r}")
    ra = ra % 360.0
    r = float(radius_arcsec) / 3600.0
    own = not isinstance(store, Store)
    st = Store(str(store), create=False) if own else store
    try:
        best_obj = np.full(len(df), None, dtype=object)
        best_d = np.full(len(df), np.inf)
        strip = np.floor((dec + 90.0) / STRIP_DEG).astype(np.int64)
        for s in np.unique(strip):
            who = np.flatnonzero(strip == s)
            lo = float(dec[who].min()) - r - PAD_DEG
            hi = float(dec[who].max()) + r + PAD_DEG
            objs = _objects_in_strip(st, lo, hi)
            i, j, d = match_pairs(ra[who], dec[who], objs["meanra"].to_numpy("float64"),
                                  objs["meandec"].to_numpy("float64"), r)
            if not len(i):
                continue
            order = np.lexsort((objs["oid"].to_numpy(dtype=str)[j], d, i))
            i, j, d = i[order], j[order], d[order]
            first = np.r_[True, i[1:] != i[:-1]]
            best_obj[who[i[first]]] = objs["oid"].to_numpy(dtype=object)[j[first]]
            best_d[who[i[first]]] = d[first]
        matched = [o for o in best_obj if o is not None]
        objects = st.read_table("object", where={"oid": sorted(set(matched))}) if matched else \
            st.read_table("object", where={"oid": []})
    finally:
        if own:
            st.close()
    out = pd.DataFrame({id_col: df[id_col].to_numpy(), ra_col: df[ra_col].to_numpy(),
                        dec_col: df[dec_col].to_numpy(),
                        "oid": pd.array(best_obj, dtype="str"),
                        "dist": np.where(np.isfinite(best_d), best_d * 3600.0, np.nan)})
    out = out.merge(objects, on="oid", how="left", suffixes=("", "_object"))
    if not keep_unmatched:
        out = out[out["oid"].notna()].reset_index(drop=True)
    return out


def main_service(argv: Sequence[str] | None = None) -> int:
    """``alerce xmatch --store URL --input users.csv --radius 2 --out out.csv``."""
    p = argparse.ArgumentParser(prog="alerce xmatch",
                                description="Match a user catalog (id, ra, dec) with the store's objects.")
    p.add_argument("--store", required=True, help="store URL")
    p.add_argument("--input", required=True, help="user catalog (CSV, FITS or Parquet)")
    p.add_argument("--radius", type=float, default=2.0, help="match radius in arcsec (default 2)")
    p.add_argument("--out", required=True, help="output file (.csv or .parquet)")
    p.add_argument("--id-col", default="id")
    p.add_argument("--ra-col", default="ra")
    p.add_argument("--dec-col", default="dec")
    p.add_argument("--matched-only", action="store_true", help="drop user rows without a match")
    args = p.parse_args(argv)
    try:
        out = match_user_catalog(args.input, args.store, args.radius, id_col=args.id_col, ra_col=args.ra_col,
                                 dec_col=args.dec_col, keep_unmatched=not args.matched_only)
    except (KeyError, ValueError, FileNotFoundError) as exc:
        print(f"alerce xmatch: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    if str(args.out).lower().endswith(".parquet"):
        out.to_parquet(args.out, index=False)
    else:
        out.to_csv(args.out, index=False)
    print(f"{int(out['oid'].notna().sum())} of {len(out)} sources matched -> {args.out}")
    return 0
