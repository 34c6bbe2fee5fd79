"""Which Kafka offsets are safe to commit.

A consumer hands out messages in offset order per partition, but batches finish out of order (and a
failed batch is retried later). :class:`ContiguousOffsetTracker` only lets a partition's committed
offset move past a message once that message *and every earlier one* has been stored, so a crash
never skips an alert (at-least-once; the store's upserts make the replays harmless).
"""

from __future__ import annotations

from collections import deque
from typing import Hashable, Iterable


class ContiguousOffsetTracker:
    """Per-partition contiguous-offset bookkeeping.

    Partitions are any hashable key, typically ``(topic, partition)``. Offsets may have gaps
    (compaction, transaction markers): only offsets actually received count.
    """

    def __init__(self) -> None:
        self._received: dict[Hashable, deque[int]] = {}
        self._done: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}

    def received(self, partition: Hashable, offset: int) -> None:
        """Record a message handed to the pipeline (offsets must increase per partition)."""
        queue = self._received.setdefault(partition, deque())
        if queue and offset <= queue[-1]:
            raise ValueError(f"offset {offset} of {partition} received out of order")
        queue.append(offset)
        self._done.setdefault(partition, set())

    def done(self, partition: Hashable, offsets: Iterable[int]) -> None:
        """Record messages whose results are durably stored."""
        if partition not in self._received:
            return  # partition was revoked meanwhile: nothing to commit for it here
        done = self._done[partition]
        done.update(offsets)
        queue = self._received[partition]
        while queue and queue[0] in done:
            offset = queue.popleft()
            done.discard(offset)
            self._next[partition] = offset + 1

    def committable(self) -> dict[Hashable, int]:
        """``{partition: offset}`` to commit: the next offset to read, all below it being done."""
        return dict(self._next)

    def pending(self, partition: Hashable | None = None) -> int:
        """Number of received messages not yet committable (one partition or all)."""
        if partition is not None:
            return len(self._received.get(partition, ()))
        return sum(len(q) for q in self._received.values())

    def forget(self, partition: Hashable) -> None:
        """Drop a revoked partition (its uncommitted messages will be re-delivered elsewhere)."""
        self._received.pop(partition, None)
        self._done.pop(partition, None)
        self._next.pop(partition, None)

    def mark_committed(self, partition: Hashable, offset: int) -> None:
        """Forget the commit point once it has been committed (avoids re-committing it)."""
        if self._next.get(partition) == offset:
            del self._next[partition]
