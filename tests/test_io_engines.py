"""The numba columnar decoder must give exactly the frames of the fastavro (dict) decoder."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import shared

from alerce.io import AlertDecodeError, Packet, decode_packet_strict, decode_packets, iter_packets
from alerce.io.avro import DEFAULT_CACHE, _read_long, read_container_blocks
from alerce.io.vm_columns import program_for

SORT_KEYS = {
    "alerts": ["source"],
    "detections": ["candid", "parent_candid", "oid"],
    "non_detections": ["oid", "mjd", "fid", "parent_candid"],
    "forced_photometry": ["oid", "pid", "parent_candid"],
    "stamps": ["candid", "oid"],
}


def canonical(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame.sort_values(SORT_KEYS[name], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("keep_stamps", [True, False])
def test_numba_equals_fastavro_on_all_real_ztf_alerts(keep_stamps):
    packets = list(iter_packets(shared("ztf", "alerts")))
    fast = decode_packets(packets, engine="numba", keep_stamps=keep_stamps)
    ref = decode_packets(packets, engine="fastavro", keep_stamps=keep_stamps)
    assert fast.dead_letters == [] and ref.dead_letters == []
    for name in ("alerts", "detections", "non_detections", "forced_photometry", "stamps"):
        a = canonical(getattr(fast, name), name)
        b = canonical(getattr(ref, name), name)
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


def test_numba_engine_is_used_for_every_ztf_schema():
    for packet in iter_packets(shared("ztf", "alerts")):
        schema, _ = read_container_blocks(packet.payload, packet.source, DEFAULT_CACHE)
        assert program_for(schema) is not None, packet.source


def test_numba_chunks_and_multi_alert_packets():
    packets = list(iter_packets(shared("ztf", "alerts", "series_ZTF19aazzpje")))
    whole = decode_packets(packets)
    chunked = decode_packets(packets, chunk_size=3)
    pd.testing.assert_frame_equal(whole.alerts, chunked.alerts)  # packet order kept
    for name in ("detections", "non_detections", "stamps"):
        pd.testing.assert_frame_equal(canonical(getattr(whole, name), name),
                                      canonical(getattr(chunked, name), name))


def corrupt_record(packet: Packet) -> Packet:
    """Same framing, but the first record's first string length says 2**40 bytes."""
    _, blocks = read_container_blocks(packet.payload, packet.source)
    at = blocks[0][2]
    _, pos = _read_long(packet.payload, at)
    _, pos = _read_long(packet.payload, pos)
    data = bytearray(packet.payload)
    data[pos : pos + 6] = b"\x80\x80\x80\x80\x80\x02"  # zig-zag varint of 2**40
    return Packet("bad_record.avro", bytes(data))


@pytest.mark.parametrize("engine", ["numba", "fastavro"])
def test_corrupt_record_inside_valid_framing(engine):
    good = next(iter(iter_packets(shared("ztf", "alerts", "fink_v3.3_20200101"))))
    bad = corrupt_record(good)
    with pytest.raises(AlertDecodeError) as err:
        decode_packet_strict(bad, engine=engine)
    assert "bad_record.avro" in str(err.value) and "corrupt" in str(err.value)
    batch = decode_packets([good, bad, good], engine=engine)
    assert len(batch.alerts) == 2 and len(batch.dead_letters) == 1
    assert batch.dead_letters[0].payload == bad.payload


@pytest.mark.parametrize("engine", ["numba", "fastavro"])
def test_random_corruption_never_crashes(engine):
    import numpy as np

    rng = np.random.default_rng(12345)
    packets = list(iter_packets(shared("ztf", "alerts", "kowalski_v3.3_20200202")))
    mutated = []
    for i in range(120):
        p = packets[i % len(packets)]
        data = bytearray(p.payload)
        # damage the record area (skip the 4-byte magic so framing errors and record errors mix)
        for at in rng.integers(4, min(len(data), 12000), size=rng.integers(1, 6)):
            data[at] = int(rng.integers(0, 256))
        mutated.append(Packet(f"m{i}.avro", bytes(data)))
    batch = decode_packets(mutated, engine=engine)
    # every packet ends up exactly once: decoded (damage inside a value) or dead-lettered
    decoded = set(batch.alerts["source"])
    dead = {d.source.split(":")[0].split("#")[0] for d in batch.dead_letters}
    assert len(decoded) + len(dead) == len(mutated)
    assert decoded.isdisjoint(dead)
    assert len(batch.dead_letters) > 0


def test_row_arrays_grow_mid_batch_and_size_the_next_batch(tmp_path):
    """Simulated alerts carry ~160 history rows each: far past the first guess of rows.

    The decoder must grow its row arrays where it stopped (not start over), give exactly the
    fastavro frames, keep a corrupt packet as a dead letter after a growth, and size the next
    batch from what it learned.
    """
    from alerce.simulate import simulate

    simulate(tmp_path / "night", n_objects=40, seed=4)
    packets = list(iter_packets(str(tmp_path / "night")))[:60]
    schema, _ = read_container_blocks(packets[0].payload, packets[0].source, DEFAULT_CACHE)
    program = program_for(schema)
    program.rows_per_record = 0.0  # forget earlier batches: start from the generic guess
    mixed = packets[:40] + [corrupt_record(packets[40])] + packets[41:]
    fast = decode_packets(mixed, engine="numba", keep_stamps=False)
    ref = decode_packets(mixed, engine="fastavro", keep_stamps=False)
    assert len(fast.dead_letters) == len(ref.dead_letters) == 1
    assert len(fast.forced_photometry) > 32 * len(packets)  # more rows than the first guess
    for name in ("alerts", "detections", "non_detections", "forced_photometry"):
        pd.testing.assert_frame_equal(canonical(getattr(fast, name), name),
                                      canonical(getattr(ref, name), name), check_exact=True, obj=name)
    # learned for the next batch: at least one row per alert and per forced-photometry entry
    assert program.rows_per_record * len(mixed) >= len(fast.alerts) + len(fast.forced_photometry)
