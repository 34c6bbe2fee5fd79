"""Which Kafka offsets are safe to commit.

A consumer hands out messages in offset order per partition, but batches finish out of order (and a
failed batch is retried later). :class:`ContiguousOffsetTracker` only lets a partition's committed
offset move past a message once that message *and every earlier one* has been stored, so a crash
never skips an alert (at-least-once; the store's upserts make the replays harmless).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable


class ContiguousOffsetTracker:
    """Per-partition contiguous-offset bookkeeping.

    Partitions are any hashable key, typically ``(topic, partition)``. Offsets may have gaps
    (compaction, transaction markers): only offsets actually received count.
    """

    def __init__(self) -> None:
        self._received: dict[Hashable, deque[int]] = {}
        self._done: dict[Hashable, set[int]] = {}
        self._next: dict[Hashable, int] = {}
        self._epoch: dict[Hashable, int] = {}
        self._last: dict[Hashable, int] = {}

    def received(self, partition: Hashable, offset: int) -> int:
        """Record a message handed to the pipeline; return the partition's epoch.

        Offsets increase per partition. A smaller offset means the consumer was rewound (offset
        reset after a broker lost its log, a seek): the partition starts a new epoch and results
        of the old epoch no longer count.
        """
        if partition in self._last and offset <= self._last[partition]:
            self._epoch[partition] = self._epoch.get(partition, 0) + 1
            self._received[partition] = deque()
            self._done[partition] = set()
            self._next.pop(partition, None)
        self._last[partition] = offset
        self._received.setdefault(partition, deque()).append(offset)
        self._done.setdefault(partition, set())
        return self._epoch.setdefault(partition, 0)

    def done(self, partition: Hashable, offsets: Iterable[int], epoch: int | None = None) -> None:
        """Record messages whose results are durably stored (ignored for a stale ``epoch``)."""
        if partition not in self._received:
            return  # partition was revoked meanwhile: nothing to commit for it here
        if epoch is not None and epoch != self._epoch.get(partition, 0):
            return
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
        self._last.pop(partition, None)
        self._epoch[partition] = self._epoch.get(partition, 0) + 1

    def mark_committed(self, partition: Hashable, offset: int) -> None:
        """Forget the commit point once it has been committed (avoids re-committing it)."""
        if self._next.get(partition) == offset:
            del self._next[partition]
