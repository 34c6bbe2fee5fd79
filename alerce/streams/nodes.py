"""streamz nodes that dispatch batches to a Dask cluster.

They differ from ``streamz.dask`` in two ways that matter for a broker: the client is explicit
(``GatewayCluster.get_client()`` works, no reliance on a global default), and
:class:`process_by_lane` keeps each object's alerts in order. Objects are hashed to ``n_lanes``
lanes; the batch of lane ``i`` is a Dask task that depends on the previous batch of lane ``i``, so
two batches never update the same object's light curve at once, while different lanes run in
parallel. Raw packets whose object id can be read without decoding (ZTF) are split by lane on the
client, and each lane decodes its own share on its worker; other work items are decoded by one
task and the decoded batch is split. Only futures and small summaries travel through the graph on
the client.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from streamz import Stream
from tornado import gen
from tornado.ioloop import IOLoop

from alerce.batch import AlertBatch


def lane_of(oids, n_lanes: int) -> np.ndarray:
    """Stable lane number of each object id (CRC32 of the id modulo ``n_lanes``)."""
    return np.fromiter((zlib.crc32(str(o).encode()) % n_lanes for o in oids), dtype=np.int64,
                       count=len(oids))


def select_lane(batch: AlertBatch, lane: int, n_lanes: int) -> AlertBatch:
    """Sub-batch with the objects of one lane (dead letters travel with lane 0)."""
    oids = batch.oids
    keep = np.asarray(oids)[lane_of(oids, n_lanes) == lane] if len(oids) else []
    sub = batch.select(keep)
    if lane == 0:
        sub.dead_letters = list(batch.dead_letters)
    return sub


def combine(*summaries):
    """Sum of the lanes' summaries of one batch."""
    out = summaries[0]
    for s in summaries[1:]:
        out = out + s
    return out


_PIPELINE_LOOP: list[IOLoop] = []
_PIPELINE_LOOP_LOCK = threading.Lock()


def pipeline_loop() -> IOLoop:
    """The event loop our synchronous pipelines run on: one daemon thread, shared, started once.

    streamz would otherwise run a synchronous pipeline on the default Dask client's loop (a
    notebook's ``Client()``). There ``Future.result()`` returns a coroutine instead of the result,
    and the pipeline's own work (reading packets' object ids) would hold up the client's messages.
    """
    with _PIPELINE_LOOP_LOCK:
        if not _PIPELINE_LOOP:
            loop = IOLoop(make_current=False)
            threading.Thread(target=loop.start, name="alerce-pipeline-loop", daemon=True).start()
            _PIPELINE_LOOP.append(loop)
        return _PIPELINE_LOOP[0]


def pipeline_source() -> Stream:
    """A synchronous source whose pipeline runs on :func:`pipeline_loop`."""
    return Stream(asynchronous=False, loop=pipeline_loop())


class _ClientNode(Stream):
    def __init__(self, upstream, client, **kwargs):
        self.client = client
        kwargs["ensure_io_loop"] = True
        super().__init__(upstream, **kwargs)


@Stream.register_api()
class process_by_lane(_ClientNode):
    """Run ``func(lane_batch, *args, prev=...)`` on each lane of a work item, in lane order.

    ``decode(item)`` turns a work item into an :class:`~alerce.batch.AlertBatch`. Emits one
    future per item: the combined summary of its lanes. With ``route_packets`` (default), packets
    are split by lane before decoding where :func:`split_packets_by_lane` can.
    """

    def __init__(self, upstream, client, n_lanes: int, func: Callable, *args, decode: Callable,
                 route_packets: bool = True, **kwargs):
        self.n_lanes, self.func, self.args, self.kwargs = n_lanes, func, args, kwargs
        self.decode, self.route_packets = decode, route_packets
        self.previous: list[Any] = [None] * n_lanes
        super().__init__(upstream, client)

    def update(self, x, who=None, metadata=None):
        c = self.client
        workers = lane_workers(c, self.n_lanes)
        routed = split_packets_by_lane(x, self.n_lanes) if self.route_packets else None
        decoded = None if routed is not None else c.submit(self.decode, x, pure=False)
        lanes = []
        for lane in range(self.n_lanes):
            # Dask accepts allow_other_workers only together with workers
            where = {} if workers[lane] is None else {"workers": workers[lane], "allow_other_workers": True}
            if routed is None:  # the split runs where the decoded batch is; the lane's work on its worker
                part = c.submit(select_lane, decoded, lane, self.n_lanes, pure=False)
                fut = c.submit(self.func, part, *self.args, prev=self.previous[lane], pure=False,
                               **where, **self.kwargs)
            elif len(routed[lane]):
                fut = c.submit(decode_then_run, self.decode, self.func, routed[lane], *self.args,
                               prev=self.previous[lane], pure=False, **where, **self.kwargs)
            else:
                continue
            self.previous[lane] = fut
            lanes.append(fut)
        return self._emit(c.submit(combine, *lanes, pure=False), metadata=metadata)


def split_packets_by_lane(item, n_lanes: int) -> list | None:
    """``("packets", bundle)`` as one ``("packets", lane_bundle)`` per lane, or None.

    None when the item holds no packets, or when the object id of some packet cannot be read
    without decoding it (not a ZTF container, or corrupt): the item is then decoded by one task
    and split after decoding, where bad packets become dead letters.
    """
    from alerce.io.peek import container_object_id
    from alerce.io.sources import PacketBundle

    kind, payload = item
    if kind != "packets" or not isinstance(payload, PacketBundle) or not len(payload):
        return None
    oids = []
    for i in range(len(payload)):
        oid = container_object_id(payload.buffer[payload.offsets[i]:payload.offsets[i + 1]])
        if oid is None:
            return None
        oids.append(oid)
    lanes = lane_of(oids, n_lanes)
    return [("packets", payload.take(np.flatnonzero(lanes == lane))) for lane in range(n_lanes)]


def decode_then_run(decode: Callable, func: Callable, item, *args, **kwargs):
    """Dask task of a routed lane: ``func(decode(item), *args, **kwargs)``.

    The decoding seconds are added to the summary as the ``decode`` stage.
    """
    import time

    t0 = time.perf_counter()
    batch = decode(item)
    seconds = time.perf_counter() - t0
    out = func(batch, *args, **kwargs)
    if hasattr(out, "stages"):
        out.stages = {"decode": seconds, **out.stages}
        out.seconds += seconds
    return out


def lane_workers(client, n_lanes: int) -> list[list[str] | None]:
    """Preferred worker of each lane: lanes are dealt round-robin over the current workers.

    Without a preference, Dask runs every lane of a batch on the worker that decoded it (data
    locality), leaving the other workers idle until work stealing kicks in. The preference is
    loose (``allow_other_workers``): a lane moves on when its worker leaves the cluster.
    """
    try:
        names = sorted(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - no information yet: no preference
        names = []
    if not names:
        return [None] * n_lanes
    return [[names[lane % len(names)]] for lane in range(n_lanes)]


class BatchFailed:
    """Emitted by :class:`gather_results` instead of a result when the batch's task failed."""

    def __init__(self, error: BaseException):
        self.error = error

    def __repr__(self) -> str:
        return f"BatchFailed({type(self.error).__name__}: {self.error})"


async def _wait(future) -> Any:
    """Await a ``distributed.Future`` from any event loop (without blocking it)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def _resolve(_):
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    future.add_done_callback(_resolve)
    await done
    result = future.result()
    if inspect.isawaitable(result):  # on the client's own loop, result() returns a coroutine
        result = await result
    return result


@Stream.register_api()
class gather_results(Stream):
    """Wait for a future without blocking the event loop and emit its result.

    Combine with ``buffer(n)`` upstream: up to ``n`` batches are then in flight, and the
    source blocks when the buffer is full (backpressure).
    """

    def __init__(self, upstream, **kwargs):
        kwargs["ensure_io_loop"] = True
        super().__init__(upstream, **kwargs)

    @gen.coroutine
    def update(self, x, who=None, metadata=None):
        self._retain_refs(metadata)
        try:
            result = yield _wait(x)
        except Exception as exc:  # noqa: BLE001 - the sink decides what a failed batch means
            result = BatchFailed(exc)
        finally:
            self._release_refs(metadata)
        out = yield self._emit(result, metadata=metadata)
        raise gen.Return(out)
