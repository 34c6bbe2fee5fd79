"""CDS XMatch client against a local fake of the service (http.server on 127.0.0.1, no internet)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from alerce.xmatch import CDSXMatchError, cds_tables, cds_xmatch, wise_metadata

#: A small AllWISE-like catalog with VizieR's column names (II/328/allwise).
RNG = np.random.default_rng(4)
N = 3000
CAT = pd.DataFrame({
    "AllWISE": [f"J{i:06d}+000000.0" for i in range(N)],
    "RAJ2000": RNG.uniform(0, 360, N), "DEJ2000": np.degrees(np.arcsin(RNG.uniform(-1, 1, N))),
    "W1mag": RNG.normal(14, 1, N).round(3), "W2mag": RNG.normal(13, 1, N).round(3),
    "W3mag": RNG.normal(11, 1, N).round(3), "W4mag": RNG.normal(8, 1, N).round(3),
    "e_W1mag": 0.03, "e_W2mag": 0.04, "Jmag": RNG.normal(15, 1, N).round(3),
})


def parse_form(headers, body: bytes) -> dict[str, bytes]:
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + headers["Content-Type"].encode() + b"\r\n\r\n" + body)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in msg.iter_parts()}


class FakeXMatch(BaseHTTPRequestHandler):
    """Answers like CDS XMatch: CSV with angDist, the uploaded columns, then the catalog's columns."""

    server_version = "FakeXMatch/1.0"

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv.calls += 1
        if self.path != "/xmatch/api/v1/sync":
            return self._send(404, b"not found")
        if srv.fail_first > 0:
            srv.fail_first -= 1
            return self._send(500, b"internal error")
        if srv.sleep_first > 0:
            srv.sleep_first -= 1
            time.sleep(1.5)
        form = parse_form(self.headers, body)
        srv.forms.append(form)
        need = {"request": b"xmatch", "RESPONSEFORMAT": b"csv", "cat2": b"vizier:II/328/allwise"}
        for k, v in need.items():
            if form.get(k) != v:
                return self._send(400, f"bad {k}: {form.get(k)!r}".encode())
        if "cat1" not in form or "colRA1" not in form or "colDec1" not in form or "distMaxArcsec" not in form:
            return self._send(400, b"missing cat1/colRA1/colDec1/distMaxArcsec")
        up = pd.read_csv(io.BytesIO(form["cat1"]), dtype=str)
        ra = up[form["colRA1"].decode()].astype(float).to_numpy()
        dec = up[form["colDec1"].decode()].astype(float).to_numpy()
        r = float(form["distMaxArcsec"])
        c1 = SkyCoord(ra * u.deg, dec * u.deg)
        c2 = SkyCoord(CAT["RAJ2000"].to_numpy() * u.deg, CAT["DEJ2000"].to_numpy() * u.deg)
        i1, i2, sep, _ = c2.search_around_sky(c1, r * u.arcsec)
        res = pd.DataFrame({"angDist": sep.arcsec.round(6)})
        res = pd.concat([res, up.iloc[i1].reset_index(drop=True), CAT.iloc[i2].reset_index(drop=True)], axis=1)
        if form.get("selection", b"best") == b"best":
            res = res.sort_values("angDist").drop_duplicates(list(up.columns)).sort_index()
        self._send(200, res.to_csv(index=False).encode(), "text/csv")

    def _send(self, code: int, data: bytes, ctype: str = "text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeXMatch)
    srv.daemon_threads = True
    srv.calls, srv.fail_first, srv.sleep_first, srv.forms = 0, 0, 0, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/xmatch/api/v1/sync"
    yield srv
    srv.shutdown()
    srv.server_close()


def objects(n_near=150, n_far=50, seed=1):
    rng = np.random.default_rng(seed)
    idx = rng.choice(N, n_near, replace=False)
    base = SkyCoord(CAT["RAJ2000"].to_numpy()[idx] * u.deg, CAT["DEJ2000"].to_numpy()[idx] * u.deg)
    off = base.directional_offset_by(rng.uniform(0, 360, n_near) * u.deg, rng.uniform(0, 1.5, n_near) * u.arcsec)
    return pd.DataFrame({"oid": [f"ZTF{i:04d}" for i in range(n_near + n_far)],
                         "meanra": np.r_[off.ra.deg, rng.uniform(0, 360, n_far)],
                         "meandec": np.r_[off.dec.deg, rng.uniform(-80, 80, n_far)]})


def expected_best(obj, radius):
    c1 = SkyCoord(obj["meanra"].to_numpy() * u.deg, obj["meandec"].to_numpy() * u.deg)
    c2 = SkyCoord(CAT["RAJ2000"].to_numpy() * u.deg, CAT["DEJ2000"].to_numpy() * u.deg)
    idx, sep, _ = c1.match_to_catalog_sky(c2)
    ok = sep.arcsec <= radius
    return dict(zip(obj["oid"][ok], CAT["AllWISE"].to_numpy()[idx[ok]]))


def test_cds_xmatch_batched_request_format_and_result(server):
    obj = objects()
    res = cds_xmatch(obj, radius_arcsec=1.0, url=server.url, timeout=10, retries=0, chunk=40)
    assert server.calls == 5  # 200 objects in chunks of 40
    form = server.forms[0]
    assert form["distMaxArcsec"] == b"1.0" and form["selection"] == b"best"
    assert form["colRA1"] == b"ra_in" and form["colDec1"] == b"dec_in"
    # batches are compact sky regions: HEALPix-sorted, so each chunk's uploaded pixels are contiguous
    from alerce.xmatch import ang2pix_nest

    firsts = [pd.read_csv(io.BytesIO(f["cat1"])) for f in server.forms]
    pix = [ang2pix_nest(8, f["ra_in"], f["dec_in"]) for f in firsts]
    assert all(np.all(np.diff(p) >= 0) for p in pix) and all(a.max() <= b.min() for a, b in zip(pix, pix[1:]))
    assert list(res.columns[:2]) == ["oid", "angDist"] and "W1mag" in res.columns
    assert dict(zip(res["oid"], res["AllWISE"])) == expected_best(obj, 1.0)
    t = cds_tables(res)
    assert len(t["xmatch"]) == len(res) and (t["xmatch"]["catid"] == "allwise").all()
    aw = t["allwise"].set_index("oid_catalog")
    src = CAT.set_index("AllWISE")
    np.testing.assert_allclose(aw["w1mpro"], src.loc[aw.index, "W1mag"])
    np.testing.assert_allclose(aw["ra"], src.loc[aw.index, "RAJ2000"])
    meta = wise_metadata(t["xmatch"], t["allwise"])
    best = expected_best(obj, 1.0)
    assert dict(zip(meta["oid"], meta["W2mag"])) == {o: src.loc[c, "W2mag"] for o, c in best.items()}


def test_cds_retry_after_500(server):
    server.fail_first = 2
    obj = objects(20, 0)
    res = cds_xmatch(obj, url=server.url, timeout=10, retries=3, backoff=0.01)
    assert server.calls == 3
    assert dict(zip(res["oid"], res["AllWISE"])) == expected_best(obj, 1.0)


def test_cds_gives_up_after_retries(server):
    server.fail_first = 10
    with pytest.raises(CDSXMatchError, match="failed after 3 attempt.*HTTP 500"):
        cds_xmatch(objects(5, 0), url=server.url, timeout=10, retries=2, backoff=0.01)


def test_cds_timeout_then_success(server):
    server.sleep_first = 1
    obj = objects(10, 0)
    res = cds_xmatch(obj, url=server.url, timeout=0.5, retries=1, backoff=0.01)
    assert server.calls == 2
    assert dict(zip(res["oid"], res["AllWISE"])) == expected_best(obj, 1.0)
    server.sleep_first = 5
    with pytest.raises(CDSXMatchError, match="(?i)timed out|timeout"):
        cds_xmatch(obj, url=server.url, timeout=0.3, retries=0)


def test_cds_client_errors_not_retried(server):
    with pytest.raises(CDSXMatchError, match="HTTP 400.*cat2"):
        cds_xmatch(objects(5, 0), catalog="vizier:I/350/gaiaedr3", url=server.url, retries=3, backoff=0.01)
    assert server.calls == 1
    with pytest.raises(KeyError, match="meanra"):
        cds_xmatch(pd.DataFrame({"oid": ["a"], "ra": [1.0], "dec": [2.0]}), url=server.url)


def test_cds_all_selection_and_empty(server):
    obj = pd.DataFrame({"oid": ["far"], "meanra": [CAT["RAJ2000"][0] + 0.5], "meandec": [CAT["DEJ2000"][0]]})
    res = cds_xmatch(obj, url=server.url, selection="all", radius_arcsec=0.5)
    assert len(res) == 0 and server.forms[-1]["selection"] == b"all"
    assert len(cds_xmatch(obj.iloc[:0], url=server.url)) == 0 and server.calls == 1
