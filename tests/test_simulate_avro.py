"""The columnar Avro encoder writes exactly the bytes fastavro writes."""

from __future__ import annotations

import io

import fastavro
import numpy as np
import pytest

from alerce.simulate.avro_columnar import encode_columns, zigzag_bytes

FIELDS = [("a", "double"), ("b", "float?"), ("c", "long"), ("d", "string?"), ("e", "int?"),
          ("f", "!string"), ("g", "double?"), ("h", "string")]


def _schema():
    def typ(code):
        base = code.strip("?!")
        return ["null", base] if code != base else base
    return fastavro.parse_schema({"type": "record", "name": "x",
                                  "fields": [{"name": n, "type": typ(c)} for n, c in FIELDS]})


def test_encode_columns_matches_fastavro():
    rng = np.random.default_rng(0)
    n = 300
    cols = {
        "a": rng.normal(size=n) * 1e5,
        "b": np.r_[rng.normal(size=n - 3) * 1e3, np.nan, np.inf, -0.0],
        "c": np.r_[rng.integers(-2**62, 2**62, n - 4), 0, -1, 2**63 - 1, -2**63],
        "d": [None if i % 3 == 0 else "x" * (i % 200) + "é" for i in range(n)],
        "e": rng.integers(-300, 300, n),
        "f": ["t", "f"] * (n // 2),
        "h": np.array(["", "ab"] * (n // 2), dtype=object),
    }
    null_rows = rng.random(n) < 0.3
    buf, off = encode_columns(FIELDS, cols, n, null_rows=null_rows, always={"f"})
    schema = _schema()
    for i in range(n):
        rec = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in cols.items()}
        if null_rows[i]:
            rec.update(b=None, d=None, e=None)
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, rec)
        assert out.getvalue() == buf[off[i]:off[i + 1]].tobytes(), i


def test_missing_required_field_is_an_error():
    with pytest.raises(ValueError, match="required"):
        encode_columns([("a", "double")], {}, 3)


@pytest.mark.parametrize("n", [0, 1, -1, 63, -64, 64, 2**40, -(2**63), 2**63 - 1])
def test_zigzag_matches_fastavro(n):
    out = io.BytesIO()
    fastavro.schemaless_writer(out, "long", n)
    assert zigzag_bytes(n) == out.getvalue()


def test_fixed_width_strings_match_fastavro():
    vals = np.array([b"ztf_20240101_abc", b"ztf_20240102_xyz"], dtype="S16")
    buf, off = encode_columns([("s", "string"), ("t", "string?")], {"s": vals, "t": vals}, 2)
    schema = fastavro.parse_schema({"type": "record", "name": "y", "fields": [
        {"name": "s", "type": "string"}, {"name": "t", "type": ["null", "string"]}]})
    for i, v in enumerate(vals):
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, {"s": v.decode(), "t": v.decode()})
        assert out.getvalue() == buf[off[i]:off[i + 1]].tobytes()
