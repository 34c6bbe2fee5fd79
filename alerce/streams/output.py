"""The annotated output stream (paper section 5.1.5): one Avro message per processed alert.

Each Kafka message value is a self-describing Avro container file holding one ``alerce.annotated_alert``
record (like ZTF's own alert messages), keyed by ``oid``. It carries the alert's photometry, the
object's corrected summary and per-band statistics, and the latest stamp and light-curve
classifications with classifier names and versions. :data:`ANNOTATED_ALERT_SCHEMA` is the schema.
"""

from __future__ import annotations

import io
import math
import time

import fastavro
import pandas as pd

from alerce import __version__

_NULL_DOUBLE = ["null", "double"]

_CLASSIFICATION = {
    "type": "record",
    "name": "classification",
    "fields": [
        {"name": "classifier_name", "type": "string"},
        {"name": "classifier_version", "type": "string"},
        {"name": "class_name", "type": "string", "doc": "most probable class"},
        {"name": "probabilities", "type": {"type": "map", "values": "double"}},
    ],
}

#: Avro schema of the output messages.
ANNOTATED_ALERT_SCHEMA = {
    "type": "record",
    "name": "annotated_alert",
    "namespace": "alerce",
    "doc": "A processed alert with its object's corrected summary and latest classifications.",
    "fields": [
        {"name": "oid", "type": "string"},
        {"name": "candid", "type": "long"},
        {"name": "mjd", "type": "double"},
        {"name": "fid", "type": "int"},
        {"name": "ra", "type": "double"},
        {"name": "dec", "type": "double"},
        {"name": "magpsf", "type": "double"},
        {"name": "sigmapsf", "type": "double"},
        {"name": "isdiffpos", "type": "int"},
        {"name": "magpsf_corr", "type": _NULL_DOUBLE, "default": None},
        {"name": "sigmapsf_corr_ext", "type": _NULL_DOUBLE, "default": None},
        {
            "name": "object",
            "type": {
                "type": "record",
                "name": "object_summary",
                "fields": [
                    {"name": "ndet", "type": "int"},
                    {"name": "firstmjd", "type": "double"},
                    {"name": "lastmjd", "type": "double"},
                    {"name": "meanra", "type": "double"},
                    {"name": "meandec", "type": "double"},
                    {"name": "corrected", "type": "boolean"},
                    {"name": "stellar", "type": "boolean"},
                    {"name": "g_r_mean", "type": _NULL_DOUBLE, "default": None},
                    {"name": "g_r_mean_corr", "type": _NULL_DOUBLE, "default": None},
                ],
            },
        },
        {
            "name": "magstats",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "band_summary",
                    "fields": [
                        {"name": "fid", "type": "int"},
                        {"name": "ndet", "type": "int"},
                        {"name": "magmean", "type": _NULL_DOUBLE, "default": None},
                        {"name": "magmin", "type": _NULL_DOUBLE, "default": None},
                        {"name": "magmax", "type": _NULL_DOUBLE, "default": None},
                        {"name": "magmean_corr", "type": _NULL_DOUBLE, "default": None},
                        {"name": "dmdt_first", "type": _NULL_DOUBLE, "default": None},
                    ],
                },
            },
        },
        {"name": "stamp_classification", "type": ["null", _CLASSIFICATION], "default": None},
        {"name": "lc_classification", "type": ["null", "classification"], "default": None},
        {"name": "processed_at", "type": "double", "doc": "unix time the alert was stored"},
        {"name": "pipeline_version", "type": "string"},
    ],
}

_PARSED = fastavro.parse_schema(ANNOTATED_ALERT_SCHEMA)


def _num(value):
    if value is None or value is pd.NA:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _classifications(probabilities: pd.DataFrame, classifier: str) -> dict[str, dict]:
    """Latest classification per oid of one classifier, as output records."""
    rows = probabilities[probabilities["classifier_name"] == classifier]
    out = {}
    for (oid, version), grp in rows.groupby(["oid", "classifier_version"], sort=True):
        best = grp.loc[grp["probability"].idxmax(), "class_name"]
        out[oid] = {
            "classifier_name": classifier,
            "classifier_version": str(version),
            "class_name": str(best),
            "probabilities": dict(zip(grp["class_name"].astype(str), grp["probability"].astype(float))),
        }
    return out


def annotated_records(alerts: pd.DataFrame, detections: pd.DataFrame, objects: pd.DataFrame,
                      magstats: pd.DataFrame, probabilities: pd.DataFrame) -> list[dict]:
    """Build the output records of a batch's alerts (pure; see :data:`ANNOTATED_ALERT_SCHEMA`)."""
    now = time.time()
    det = detections.set_index(["oid", "candid"]) if len(detections) else None
    obj = objects.set_index("oid")
    bands = {oid: grp for oid, grp in magstats.groupby("oid")} if len(magstats) else {}
    stamp = _classifications(probabilities, "stamp_classifier") if len(probabilities) else {}
    lc = _classifications(probabilities, "lc_classifier") if len(probabilities) else {}
    records = []
    for a in alerts.itertuples(index=False):
        o = obj.loc[a.oid]
        corr = det.loc[(a.oid, a.candid)] if det is not None and (a.oid, a.candid) in det.index else None
        records.append({
            "oid": a.oid,
            "candid": int(a.candid),
            "mjd": float(a.mjd),
            "fid": int(a.fid),
            "ra": float(a.ra),
            "dec": float(a.dec),
            "magpsf": float(a.magpsf),
            "sigmapsf": float(a.sigmapsf),
            "isdiffpos": int(a.isdiffpos),
            "magpsf_corr": _num(corr["magpsf_corr"]) if corr is not None else None,
            "sigmapsf_corr_ext": _num(corr["sigmapsf_corr_ext"]) if corr is not None else None,
            "object": {
                "ndet": int(o["ndet"]),
                "firstmjd": float(o["firstmjd"]),
                "lastmjd": float(o["lastmjd"]),
                "meanra": float(o["meanra"]),
                "meandec": float(o["meandec"]),
                "corrected": bool(o["corrected"]),
                "stellar": bool(o["stellar"]),
                "g_r_mean": _num(o.get("g_r_mean")),
                "g_r_mean_corr": _num(o.get("g_r_mean_corr")),
            },
            "magstats": [
                {"fid": int(m.fid), "ndet": int(m.ndet), "magmean": _num(m.magmean),
                 "magmin": _num(m.magmin), "magmax": _num(m.magmax),
                 "magmean_corr": _num(m.magmean_corr), "dmdt_first": _num(m.dmdt_first)}
                for m in bands.get(a.oid, pd.DataFrame()).itertuples(index=False)
            ],
            "stamp_classification": stamp.get(a.oid),
            "lc_classification": lc.get(a.oid),
            "processed_at": now,
            "pipeline_version": f"alerce {__version__}",
        })
    return records


def encode_record(record: dict) -> bytes:
    """One record as a self-describing Avro container file."""
    buf = io.BytesIO()
    fastavro.writer(buf, _PARSED, [record])
    return buf.getvalue()


def decode_message(value: bytes) -> dict:
    """Inverse of :func:`encode_record` (for consumers and tests)."""
    return next(iter(fastavro.reader(io.BytesIO(value))))


def publish_annotations(output, batch, processed, tables: dict, store) -> int:
    """Publish the batch's alerts to the output topic; return when the broker acknowledged all."""
    from alerce.streams.kafka import cached_producer

    oids = list(batch.oids)
    written = tables.get("probability")
    stored = store.read_table("probability", where={"oid": oids})
    probabilities = pd.concat([f for f in (stored, written) if f is not None and len(f)],
                              ignore_index=True) if (len(stored) or written is not None) else stored
    if len(probabilities):
        probabilities = probabilities.drop_duplicates(
            ["oid", "classifier_name", "classifier_version", "class_name"], keep="last")
    records = annotated_records(batch.alerts, processed.detections, processed.objects,
                                tables.get("magstat", pd.DataFrame()), probabilities)
    return cached_producer(output.kafka).send_all(
        output.topic, (encode_record(r) for r in records), (r["oid"].encode() for r in records))
