"""The contiguous-offset tracker that decides which Kafka offsets may be committed."""

from __future__ import annotations

import random

import pytest

from alerce.streams.kafka import subscription
from alerce.streams.offsets import ContiguousOffsetTracker

P = ("ztf_20240101_programid1", 0)


def test_commit_point_waits_for_every_earlier_offset():
    t = ContiguousOffsetTracker()
    for off in range(10):
        t.received(P, off)
    t.done(P, [3, 4, 5])           # a later batch finished first
    assert t.committable() == {}   # offsets 0-2 are not stored yet: nothing may be committed
    t.done(P, [0, 1])
    assert t.committable() == {P: 2}
    t.done(P, [2])
    assert t.committable() == {P: 6}
    t.mark_committed(P, 6)
    assert t.committable() == {}
    t.done(P, range(6, 10))
    assert t.committable() == {P: 10}
    assert t.pending(P) == 0


def test_gaps_in_offsets_do_not_block():
    t = ContiguousOffsetTracker()
    for off in (5, 7, 8, 20):  # compaction / transaction markers leave gaps
        t.received(P, off)
    t.done(P, [5, 7])
    assert t.committable() == {P: 8}
    t.done(P, [8, 20])
    assert t.committable() == {P: 21}


def test_random_completion_order_never_commits_an_unfinished_offset():
    rng = random.Random(3)
    t = ContiguousOffsetTracker()
    offsets = list(range(500))
    for off in offsets:
        t.received(P, off)
    order = offsets[:]
    rng.shuffle(order)
    finished: set[int] = set()
    for chunk_start in range(0, 500, 37):
        chunk = order[chunk_start:chunk_start + 37]
        t.done(P, chunk)
        finished.update(chunk)
        commit = t.committable().get(P)
        if commit is not None:
            assert all(o in finished for o in range(commit))
            assert commit == 500 or commit not in finished
    assert t.committable() == {P: 500}


def test_partitions_are_independent_and_revocation_forgets():
    t = ContiguousOffsetTracker()
    q = ("ztf_20240101_programid1", 1)
    t.received(P, 0)
    t.received(q, 0)
    t.done(q, [0])
    assert t.committable() == {q: 1}
    t.forget(P)
    t.done(P, [0])  # late completion for a revoked partition is ignored
    assert P not in t.committable()


def test_rewind_starts_a_new_epoch_and_ignores_stale_results():
    t = ContiguousOffsetTracker()
    for off in range(5):
        assert t.received(P, off) == 0
    t.done(P, [0, 1], epoch=0)
    assert t.committable() == {P: 2}
    # the broker lost its log and the consumer was reset to offset 0
    assert t.received(P, 0) == 1
    assert t.committable() == {}
    t.done(P, [0, 1, 2, 3], epoch=0)   # late results of the old epoch do not count
    assert t.committable() == {}
    t.done(P, [0], epoch=1)
    assert t.committable() == {P: 1}


@pytest.mark.parametrize(
    "given, expected",
    [
        ("ztf_20240326_programid1", ["ztf_20240326_programid1"]),
        ("ztf_*_programid1", ["^ztf_.*_programid1$"]),
        ("^ztf_.*", ["^ztf_.*"]),
        ("a,b", ["a", "b"]),
    ],
)
def test_subscription_patterns(given, expected):
    assert subscription(given) == expected
