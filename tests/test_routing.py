"""Packets routed to object lanes before decoding: object ids peeked from the raw bytes."""

from __future__ import annotations

import io

import fastavro
import numpy as np
from conftest import shared

from alerce.io import Packet, decode_packets, iter_packets
from alerce.io.peek import container_object_id
from alerce.io.sources import PacketBundle
from alerce.streams.nodes import lane_of, split_packets_by_lane

#: Real ZTF alerts of several schema versions (3.0 to 4.02) and producers.
FOLDERS = ("ampel_v3.0_20180819", "fink_v3.3_20200101", "kowalski_v3.3_20200202",
           "fink_v4.02_20231018", "kowalski_v4.01_20231012_fp", "ztf_avro_alert_official", "alerce_single")


def _real_packets() -> list[Packet]:
    out = []
    for folder in FOLDERS:
        out.extend(Packet(str(p), p.read_bytes()) for p in sorted(shared("ztf", "alerts", folder).glob("*.avro")))
    return out


def _rewrite(payload: bytes, codec: str) -> bytes:
    reader = fastavro.reader(io.BytesIO(payload))
    out = io.BytesIO()
    fastavro.writer(out, reader.writer_schema, list(reader), codec=codec)
    return out.getvalue()


def test_peeked_object_id_is_the_decoded_oid_for_every_real_schema():
    packets = _real_packets()
    assert len(packets) > 50
    for p in packets:
        batch = decode_packets([p], keep_stamps=False)
        assert len(batch.alerts), p.source
        assert container_object_id(p.payload) == batch.alerts["oid"].iloc[0], p.source
        # also from a numpy view of a bigger buffer, as the client reads a PacketBundle
        bundle = PacketBundle([Packet("x", b"\x00" * 7), p])
        assert container_object_id(bundle.buffer[bundle.offsets[1]:bundle.offsets[2]]) == batch.alerts["oid"].iloc[0]


def test_peek_gives_none_where_only_the_decoder_can_tell():
    p = _real_packets()[0]
    assert container_object_id(b"") is None
    assert container_object_id(b"Obj\x01 this is not an avro file" + bytes(range(50))) is None
    assert container_object_id(p.payload[:200]) is None  # truncated inside the header
    assert container_object_id(b"\x00\x00\x00\x00\x07" + p.payload[5:]) is None  # Confluent wire format
    # compressed blocks: the id is not readable without inflating; the decoder still reads them
    deflated = _rewrite(p.payload, "deflate")
    assert container_object_id(deflated) is None
    assert len(decode_packets([Packet("d", deflated)]).alerts) == 1
    # a container of several records (possibly several objects) is left to the decoder
    two = io.BytesIO()
    reader = fastavro.reader(io.BytesIO(p.payload))
    fastavro.writer(two, reader.writer_schema, list(reader) * 2)
    assert container_object_id(two.getvalue()) is None
    assert container_object_id(_rewrite(p.payload, "null")) == container_object_id(p.payload) is not None
    # the field asked for must be a string
    assert container_object_id(p.payload, field="candid") is None


def test_packet_bundle_take_keeps_sources_and_bytes():
    packets = [Packet(f"s{i}", bytes([i]) * (i + 1)) for i in range(6)]
    bundle = PacketBundle(packets)
    part = bundle.take([4, 1, 5])
    assert [p.source for p in part] == ["s4", "s1", "s5"]
    assert [p.payload for p in part] == [packets[4].payload, packets[1].payload, packets[5].payload]
    assert len(bundle.take([])) == 0


def test_split_by_lane_puts_each_packet_in_the_lane_of_its_decoded_object(tmp_path):
    from alerce.simulate import simulate

    simulate(tmp_path / "sim", n_objects=40, seed=3)
    packets = list(iter_packets(sorted(str(p) for p in (tmp_path / "sim").rglob("*.avro"))))
    bundle = PacketBundle(packets)
    parts = split_packets_by_lane(("packets", bundle), 3)
    assert parts is not None and [kind for kind, _ in parts] == ["packets"] * 3
    assert sum(len(b) for _, b in parts) == len(packets)
    for lane, (_, part) in enumerate(parts):
        oids = decode_packets(part, keep_stamps=False).alerts["oid"].tolist()
        assert len(oids) == len(part)
        assert np.all(lane_of(oids, 3) == lane)
    # one packet that cannot be read without decoding: the whole item takes the decode-then-split path
    assert split_packets_by_lane(("packets", PacketBundle([*packets[:3], Packet("bad", b"junk")])), 3) is None
    assert split_packets_by_lane(("files", ["a.avro"]), 3) is None
    assert split_packets_by_lane(("packets", PacketBundle([])), 3) is None
