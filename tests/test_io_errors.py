"""Bad input: each kind of bad packet raises a clear error (strict) or becomes a dead letter."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from conftest import shared

from alerce.io import (
    AlertDecodeError,
    LocalSchemaRegistry,
    Packet,
    decode_packet_strict,
    decode_packets,
    read_alerts,
    read_dead_letters,
    write_dead_letters,
)


def good_packet() -> Packet:
    path = sorted(shared("ztf", "alerts", "fink_v3.3_20200101").glob("*.avro"))[0]
    return Packet(str(path), path.read_bytes())


def rewrite(packet: Packet, codec: str = "null", copies: int = 1) -> bytes:
    """Re-write a real alert with fastavro.writer (other codec, several records)."""
    reader = fastavro.reader(io.BytesIO(packet.payload))
    recs = list(reader)
    out = io.BytesIO()
    fastavro.writer(out, reader.writer_schema, recs * copies, codec=codec)
    return out.getvalue()


def bad_packets() -> dict[str, tuple[Packet, str]]:
    good = good_packet().payload
    deflated = rewrite(good_packet(), "deflate")
    corrupt = bytearray(deflated)
    mid = len(corrupt) // 2
    corrupt[mid : mid + 64] = b"\x00" * 64
    unknown = io.BytesIO()
    fastavro.writer(unknown, {"type": "record", "name": "other.thing",
                              "fields": [{"name": "x", "type": "int"}]}, [{"x": 1}])
    wire = bytearray(b"\x00" + (704).to_bytes(4, "big") + b"\x02\x04")
    wrong_magic = bytearray(wire)
    wrong_magic[0] = 7
    return {
        "truncated": (Packet("trunc.avro", good[: len(good) // 2]), "truncated"),
        "corrupt": (Packet("corrupt.avro", bytes(corrupt)), "corrupt"),
        "garbage": (Packet("garbage.bin", b"\x13\x37 not avro at all" * 10), "magic"),
        "empty": (Packet("empty.bin", b""), "empty packet"),
        "short_wire": (Packet("topic/0/4", b"\x00\x00\x02"), "too short"),
        "unknown_schema": (Packet("other.avro", unknown.getvalue()), "unknown alert schema"),
        "wrong_magic": (Packet("topic/0/5", bytes(wrong_magic)), "wrong magic byte 0x07"),
        "unknown_schema_id": (
            Packet("topic/0/6", b"\x00" + (999).to_bytes(4, "big") + b"\x02"),
            "unknown schema id 999",
        ),
        "bad_sync": (Packet("sync.avro", good[:-3] + b"xyz"), "sync marker"),
    }


REGISTRY = LocalSchemaRegistry({})  # knows no id: wire packets are "unknown schema id"


@pytest.mark.parametrize("kind", [
    "truncated", "corrupt", "garbage", "empty", "short_wire", "unknown_schema", "wrong_magic",
    "unknown_schema_id", "bad_sync"])
def test_bad_packet_strict_and_dead_letter(kind):
    packet, reason = bad_packets()[kind]
    with pytest.raises(AlertDecodeError) as err:
        decode_packet_strict(packet, registry=REGISTRY)
    assert packet.source in str(err.value)
    assert reason in str(err.value)
    assert err.value.source == packet.source

    good = good_packet()
    batch = decode_packets([good, packet, good], registry=REGISTRY)
    assert len(batch.alerts) == 2  # the good packets survive, in order
    assert len(batch.dead_letters) == 1
    dead = batch.dead_letters[0]
    assert dead.source.startswith(packet.source)
    assert reason in dead.reason and packet.source in dead.reason
    assert dead.payload == packet.payload


def test_truncation_offset_is_reported():
    good = good_packet().payload
    with pytest.raises(AlertDecodeError) as err:
        decode_packet_strict(Packet("t.avro", good[:-100]))
    assert err.value.offset is not None and 0 < err.value.offset < len(good)
    assert f"byte offset {err.value.offset}" in str(err.value)


def test_every_truncation_is_an_error_never_a_crash():
    good = good_packet().payload
    for cut in range(0, len(good), max(1, len(good) // 97)):
        batch = decode_packets([Packet("cut.avro", good[:cut])])
        assert len(batch.alerts) == 0 and len(batch.dead_letters) == 1


def test_atlas_is_a_clear_unsupported_dead_letter():
    folder = shared("atlas")
    batch = read_alerts(folder)
    assert len(batch.alerts) == 0 and len(batch.dead_letters) == 12
    assert all("unsupported survey 'atlas'" in d.reason for d in batch.dead_letters)


def test_survey_filter():
    batch = decode_packets([good_packet()], survey="lsst")
    assert len(batch.alerts) == 0 and "expected a 'lsst' alert" in batch.dead_letters[0].reason
    with pytest.raises(ValueError):
        decode_packets([good_packet()], survey="atlas")


def test_codecs_and_multi_alert_containers():
    good = good_packet()
    for codec in ("null", "deflate", "snappy"):
        payload = rewrite(good, codec, copies=3)
        batch = decode_packet_strict(Packet(f"multi_{codec}.avro", payload))
        assert len(batch.alerts) == 3
        assert batch.alerts["source"].tolist() == [f"multi_{codec}.avro#{i}" for i in range(3)]
        ref = decode_packet_strict(good)
        assert (batch.alerts["candid"] == ref.alerts["candid"].iloc[0]).all()
        assert len(batch.detections) == 3 * len(ref.detections)


def test_missing_source_and_dead_letter_directory(tmp_path):
    out = tmp_path / "dead"
    batch = read_alerts([good_packet().source, str(tmp_path / "nope.avro")], dead_letter=out)
    assert len(batch.alerts) == 1
    assert len(batch.dead_letters) == 1 and "no such file" in batch.dead_letters[0].reason
    with pytest.raises(AlertDecodeError):
        read_alerts(str(tmp_path / "nope.avro"), strict=True)


def test_write_and_read_dead_letters(tmp_path):
    packets = [p for p, _ in bad_packets().values()]
    batch = decode_packets(packets, registry=REGISTRY)
    assert len(batch.dead_letters) == len(packets)
    index = write_dead_letters(batch.dead_letters, tmp_path)
    lines = [json.loads(x) for x in index.read_text().splitlines()]
    assert [x["source"] for x in lines] == [d.source for d in batch.dead_letters]
    assert all(x["reason"] for x in lines)
    back = read_dead_letters(tmp_path)
    assert [d.payload for d in back] == [d.payload for d in batch.dead_letters]
    # re-processing the stored payloads fails the same way
    again = decode_packets([Packet(d.source, d.payload) for d in back], registry=REGISTRY)
    assert len(again.dead_letters) == len(packets)
