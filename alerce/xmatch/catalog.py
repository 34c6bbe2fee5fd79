"""HEALPix-partitioned Parquet catalogs: ``out_dir/npix=<pixel>/part.parquet`` + ``catalog.json``.

Pixels are NESTED-scheme indices at the catalog's ``nside`` (see :mod:`alerce.xmatch.healpix`),
so a cross-match only reads the partitions its objects' cones touch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .healpix import ang2pix_nest, check_nside, pixel_resolution_deg

CATALOG_JSON = "catalog.json"


def read_table_file(path: str | os.PathLike) -> pd.DataFrame:
    """A CSV (``.csv``, ``.csv.gz``, ``.tsv``), FITS (``.fits``, ``.fit``, ``.fits.gz``) or Parquet file.

    Raises
    ------
    ValueError
        Unknown extension or unreadable file (the message names the file).
    """
    p = str(path)
    low = p.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            return pd.read_parquet(p)
        if low.endswith((".csv", ".csv.gz", ".txt")):
            return pd.read_csv(p)
        if low.endswith((".tsv", ".tsv.gz")):
            return pd.read_csv(p, sep="\t")
        if low.endswith((".fits", ".fit", ".fits.gz", ".fts")):
            from astropy.table import Table

            t = Table.read(p)
            names = [n for n in t.colnames if len(t[n].shape) <= 1]
            return t[names].to_pandas()
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the file name
        raise ValueError(f"{p}: cannot read table: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"{p}: unknown table format (expected .csv, .tsv, .fits or .parquet)")


def build_catalog(inputs: str | os.PathLike | Iterable[str | os.PathLike], out_dir: str | os.PathLike,
                  ra_col: str = "ra", dec_col: str = "dec", id_col: str = "id", nside: int = 32, *,
                  name: str | None = None, class_col: str | None = None, period_col: str | None = None,
                  kind: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Partition catalog files by HEALPix pixel into a Parquet catalog.

    Parameters
    ----------
    inputs : path or list of paths
        CSV, FITS or Parquet files holding the same columns.
    out_dir : path
        Output directory (must not exist unless ``overwrite``).
    ra_col, dec_col : str
        Position columns, degrees (ICRS).
    id_col : str
        Source identifier column (stored as ``oid_catalog`` in the ``xmatch`` table).
    nside : int
        HEALPix resolution (power of two); 32 gives 12288 pixels of about 1.8 degrees.
    name : str, optional
        Catalog name, the ``catid`` of the ``xmatch`` rows (default: the directory's name).
    class_col, period_col : str, optional
        Columns giving ``class_catalog`` and ``period`` of the ``xmatch`` rows.
    kind : {"allwise", "generic"}, optional
        Default: ``allwise`` when the columns look like AllWISE (``w1mpro`` or ``W1mag``).
    overwrite : bool

    Returns
    -------
    dict
        The ``catalog.json`` metadata (name, nside, columns, rows per pixel ...).

    Raises
    ------
    KeyError
        A named column is missing (the message lists the file's columns).
    ValueError
        Bad nside, positions out of range / NaN (the message gives the count and a row).
    """
    nside = check_nside(nside)
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not paths:
        raise ValueError("build_catalog: no input files")
    frames = []
    for p in paths:
        df = read_table_file(p)
        missing = [c for c in (ra_col, dec_col, id_col, class_col, period_col) if c and c not in df.columns]
        if missing:
            raise KeyError(f"{p}: missing column(s) {missing}; columns: {list(df.columns)}")
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    ra = pd.to_numeric(df[ra_col], errors="coerce").to_numpy(dtype="float64")
    dec = pd.to_numeric(df[dec_col], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (np.abs(dec) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{len(paths)} input file(s): {int(bad.sum())} row(s) with invalid positions, "
                         f"first at row {i}: {ra_col}={df[ra_col].iloc[i]!r}, {dec_col}={df[dec_col].iloc[i]!r}")
    out = Path(out_dir)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    pix = ang2pix_nest(nside, ra, dec)
    order = np.argsort(pix, kind="stable")
    df = df.iloc[order].reset_index(drop=True)
    pix = pix[order]
    starts = np.flatnonzero(np.r_[True, pix[1:] != pix[:-1]]) if len(pix) else np.array([], dtype=int)
    ends = np.r_[starts[1:], len(pix)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    counts: dict[str, int] = {}
    for s, e in zip(starts, ends):
        p = int(pix[s])
        folder = out / f"npix={p}"
        folder.mkdir()
        pq.write_table(table.slice(int(s), int(e - s)), folder / "part.parquet")
        counts[str(p)] = int(e - s)
    cols = [str(c) for c in df.columns]
    lower = {c.lower() for c in cols}
    if kind is None:
        kind = "allwise" if ("w1mpro" in lower or "w1mag" in lower) else "generic"
    meta = {
        "name": name or out.name, "kind": kind, "nside": nside, "scheme": "nested",
        "pixel_resolution_deg": pixel_resolution_deg(nside), "ra_col": ra_col, "dec_col": dec_col,
        "id_col": id_col, "class_col": class_col, "period_col": period_col, "columns": cols,
        "n_rows": int(len(df)), "pixels": counts, "sources": [str(p) for p in paths],
    }
    (out / CATALOG_JSON).write_text(json.dumps(meta, indent=1))
    return meta


def load_catalog_meta(catalog_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``catalog.json`` of a catalog directory (FileNotFoundError names the directory)."""
    path = Path(catalog_dir) / CATALOG_JSON
    if not path.exists():
        raise FileNotFoundError(f"{catalog_dir}: not a catalog (no {CATALOG_JSON}); build it with "
                                "`alerce catalog build`")
    return json.loads(path.read_text())


def read_partition(catalog_dir: str | os.PathLike, pixel: int) -> pd.DataFrame:
    """Rows of one HEALPix partition (empty frame when the pixel holds no source)."""
    path = Path(catalog_dir) / f"npix={int(pixel)}" / "part.parquet"
    if not path.exists():
        return pd.DataFrame()
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def main_catalog(argv: Sequence[str] | None = None) -> int:
    """``alerce catalog build INPUT... --out DIR [--ra RA] [--dec DEC] [--id ID] [--nside N] ...``."""
    p = argparse.ArgumentParser(prog="alerce catalog", description="HEALPix-partitioned Parquet catalogs.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="partition CSV/FITS/Parquet files by HEALPix pixel")
    b.add_argument("inputs", nargs="+", help="CSV, FITS or Parquet files")
    b.add_argument("--out", required=True, help="output catalog directory")
    b.add_argument("--ra", default="ra", help="RA column (degrees)")
    b.add_argument("--dec", default="dec", help="Dec column (degrees)")
    b.add_argument("--id", default="id", help="source id column")
    b.add_argument("--nside", type=int, default=32)
    b.add_argument("--name", help="catalog name (catid); default: the directory name")
    b.add_argument("--class-col", help="class column (class_catalog)")
    b.add_argument("--period-col", help="period column")
    b.add_argument("--kind", choices=("allwise", "generic"))
    b.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        meta = build_catalog(args.inputs, args.out, args.ra, args.dec, args.id, args.nside, name=args.name,
                             class_col=args.class_col, period_col=args.period_col, kind=args.kind,
                             overwrite=args.overwrite)
    except (KeyError, ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"alerce catalog build: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    print(f"catalog {meta['name']!r}: {meta['n_rows']} sources in {len(meta['pixels'])} pixels "
          f"(nside={meta['nside']}) -> {args.out}")
    return 0
