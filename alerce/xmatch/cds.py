"""Client of the CDS XMatch service (``/xmatch/api/v1/sync``), batched by sky region.

Speaks the documented API: a ``multipart/form-data`` POST with ``request=xmatch``,
``distMaxArcsec``, ``RESPONSEFORMAT=csv``, ``selection``, the uploaded table ``cat1`` (CSV) with
``colRA1``/``colDec1``, and ``cat2`` (e.g. ``vizier:II/328/allwise``). The CSV answer holds
``angDist`` (arcsec) first, then the uploaded columns, then the catalog's columns.
Only the standard library is used (``urllib``).
"""

from __future__ import annotations

import io
import logging
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import numpy as np
import pandas as pd

from .healpix import ang2pix_nest
from .match import VIZIER_ALLWISE, XMATCH_COLUMNS, allwise_rows

log = logging.getLogger(__name__)

#: The public CDS XMatch synchronous endpoint.
CDS_URL = "http://cdsxmatch.u-strasbg.fr/xmatch/api/v1/sync"

#: Names of the uploaded columns (prefixed so they never collide with the catalog's).
UPLOAD_COLUMNS: tuple[str, str, str] = ("oid_in", "ra_in", "dec_in")


class CDSXMatchError(RuntimeError):
    """The XMatch service refused a request or could not be reached after the retries."""


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = f"alerce-{uuid.uuid4().hex}"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n".encode())
        out.write(str(value).encode() + b"\r\n")
    for name, (filename, data) in files.items():
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                  f"filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n".encode())
        out.write(data + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _post(url: str, body: bytes, content_type: str, timeout: float) -> bytes:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def xmatch_request(chunk: pd.DataFrame, catalog: str, radius_arcsec: float, url: str, timeout: float,
                   retries: int, selection: str = "best", backoff: float = 1.0) -> pd.DataFrame:
    """One synchronous XMatch request for ``chunk`` (columns :data:`UPLOAD_COLUMNS`), with retries.

    Server errors (5xx), connection errors and timeouts are retried ``retries`` times with
    exponential backoff; client errors (4xx) are not.

    Raises
    ------
    CDSXMatchError
        4xx answer, unparsable answer, or still failing after the retries (names URL and reason).
    """
    fields = {"request": "xmatch", "distMaxArcsec": repr(float(radius_arcsec)), "RESPONSEFORMAT": "csv",
              "selection": selection, "colRA1": UPLOAD_COLUMNS[1], "colDec1": UPLOAD_COLUMNS[2],
              "cat2": catalog}
    body, ctype = _multipart(fields, {"cat1": ("objects.csv", chunk.to_csv(index=False).encode())})
    last: str = ""
    for attempt in range(int(retries) + 1):
        try:
            data = _post(url, body, ctype, timeout)
            break
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace") if exc.fp else ""
            if exc.code < 500:
                raise CDSXMatchError(f"{url}: HTTP {exc.code} {exc.reason}: {detail}") from None
            last = f"HTTP {exc.code} {exc.reason}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(exc).__name__}: {reason}"
        if attempt < retries:
            log.info("CDS XMatch %s failed (%s), retry %d/%d", url, last, attempt + 1, retries)
            time.sleep(backoff * 2 ** attempt)
    else:
        raise CDSXMatchError(f"{url}: failed after {int(retries) + 1} attempt(s): {last}")
    try:
        df = pd.read_csv(io.BytesIO(data), dtype={UPLOAD_COLUMNS[0]: str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=["angDist", *UPLOAD_COLUMNS])
    except Exception as exc:  # noqa: BLE001
        raise CDSXMatchError(f"{url}: unparsable CSV answer ({exc}): {data[:200]!r}") from None
    if "angDist" not in df.columns or UPLOAD_COLUMNS[0] not in df.columns:
        raise CDSXMatchError(f"{url}: answer lacks angDist/{UPLOAD_COLUMNS[0]} columns: {list(df.columns)[:10]}")
    return df


def cds_xmatch(objects: pd.DataFrame, catalog: str = "vizier:II/328/allwise", radius_arcsec: float = 1.0,
               url: str = CDS_URL, timeout: float = 60.0, retries: int = 3, chunk: int = 5000,
               selection: str = "best", region_nside: int = 8, backoff: float = 1.0) -> pd.DataFrame:
    """Cross-match objects with a VizieR catalog through CDS XMatch.

    Parameters
    ----------
    objects : DataFrame
        ``oid, meanra, meandec`` (degrees); rows with invalid positions are skipped.
    catalog : str
        ``cat2`` of the request (a VizieR table, e.g. AllWISE ``vizier:II/328/allwise``).
    radius_arcsec : float
        ``distMaxArcsec``.
    url : str
        The ``/xmatch/api/v1/sync`` endpoint.
    timeout : float
        Seconds per HTTP request.
    retries : int
        Retries of a request after a 5xx answer, a connection error or a timeout.
    chunk : int
        Maximum objects per request. Objects are sorted by HEALPix pixel (``region_nside``) so
        each request covers a compact sky region.
    selection : {"best", "all"}
        ``best``: the nearest source per object (ALeRCE's choice); ``all``: every source.

    Returns
    -------
    DataFrame
        ``oid, angDist`` (arcsec) then the catalog's columns, in the order of the answer.
    """
    if selection not in ("best", "all"):
        raise ValueError(f"selection must be 'best' or 'all', got {selection!r}")
    missing = [c for c in ("oid", "meanra", "meandec") if c not in objects.columns]
    if missing:
        raise KeyError(f"objects frame lacks column(s) {missing}; needs oid, meanra, meandec")
    ra = pd.to_numeric(objects["meanra"], errors="coerce").to_numpy("float64")
    dec = pd.to_numeric(objects["meandec"], errors="coerce").to_numpy("float64")
    ok = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90)
    up = pd.DataFrame({UPLOAD_COLUMNS[0]: objects["oid"].astype(str).to_numpy()[ok],
                       UPLOAD_COLUMNS[1]: ra[ok] % 360.0, UPLOAD_COLUMNS[2]: dec[ok]})
    if len(up):
        order = np.argsort(ang2pix_nest(region_nside, up[UPLOAD_COLUMNS[1]], up[UPLOAD_COLUMNS[2]]),
                           kind="stable")
        up = up.iloc[order].reset_index(drop=True)
    chunk = max(1, int(chunk))
    parts = [xmatch_request(up.iloc[s:s + chunk], catalog, radius_arcsec, url, timeout, retries,
                            selection, backoff) for s in range(0, len(up), chunk)]
    if not parts:
        return pd.DataFrame(columns=["oid", "angDist"])
    res = pd.concat(parts, ignore_index=True)
    res = res.drop(columns=[UPLOAD_COLUMNS[1], UPLOAD_COLUMNS[2]]).rename(columns={UPLOAD_COLUMNS[0]: "oid"})
    cols = ["oid", "angDist"] + [c for c in res.columns if c not in ("oid", "angDist")]
    return res[cols].reset_index(drop=True)


def cds_tables(result: pd.DataFrame, catid: str = "allwise", id_col: str = "AllWISE") -> dict[str, Any]:
    """``xmatch`` and (for AllWISE) ``allwise`` table rows from a :func:`cds_xmatch` result."""
    if id_col not in result.columns:
        raise KeyError(f"result has no {id_col!r} column; columns: {list(result.columns)}")
    res = result.sort_values(["oid", "angDist"], kind="mergesort").drop_duplicates("oid")
    xm = pd.DataFrame({
        "oid": res["oid"].astype(str).to_numpy(), "catid": catid,
        "oid_catalog": res[id_col].astype(str).to_numpy(),
        "dist": pd.to_numeric(res["angDist"], errors="coerce").to_numpy("float64"),
        "class_catalog": pd.Series([None] * len(res), dtype="str"),
        "period": np.full(len(res), np.nan),
    }, columns=list(XMATCH_COLUMNS))
    out = {"xmatch": xm}
    if any(c in result.columns for c in VIZIER_ALLWISE if c.startswith("W")):
        ra = "RAJ2000" if "RAJ2000" in res.columns else "ra"
        dec = "DEJ2000" if "DEJ2000" in res.columns else "dec"
        out["allwise"] = allwise_rows(res, ra, dec, id_col)
    return out
