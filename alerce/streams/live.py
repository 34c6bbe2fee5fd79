"""The live pipeline: Kafka in, store and annotated Kafka stream out, at-least-once.

Built from the same nodes as the replay (:func:`alerce.streams.replay.build_pipeline`): the Kafka
consumer feeds work items of raw packets, Dask decodes and processes them per object lane, and the
client commits offsets only once every earlier message of the partition is stored (and, with an
output topic, acknowledged by the broker). Failed batches (lost worker, store outage, output broker
down) are retried with back-off; their offsets stay uncommitted meanwhile, so even a crash of this
process loses nothing: the next consumer of the group starts again from the last safe offset.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from alerce.batch import DeadLetter
from alerce.io.sources import PacketBundle
from alerce.streams import nodes  # noqa: F401  (registers the Dask nodes on Stream)
from alerce.streams.cluster import dask_client, warm_up
from alerce.streams.kafka import AlertConsumer, MessageRef
from alerce.streams.nodes import BatchFailed, pipeline_source
from alerce.streams.replay import build_pipeline
from alerce.streams.steps import BatchSummary, OutputConfig, PipelineConfig


@dataclass
class LiveSummary:
    """Counters of a live run (also the return value of :func:`stream`)."""

    messages: int = 0
    alerts: int = 0
    bad_alerts: int = 0
    batches: int = 0
    retries: int = 0
    commits: int = 0
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    #: worker seconds per stage of the stored batches (see ``BatchSummary.stages``)
    stages: dict[str, float] = field(default_factory=dict)

    def format(self) -> str:
        rate = self.alerts / self.elapsed if self.elapsed else 0.0
        return (f"messages {self.messages:,}  alerts stored {self.alerts:,}  bad {self.bad_alerts:,}  "
                f"batches {self.batches:,}  retries {self.retries:,}  commits {self.commits:,}  "
                f"elapsed {self.elapsed:.1f} s  ({rate:,.0f} alerts/s)")


@dataclass
class _InFlight:
    item: tuple
    refs: list[MessageRef]
    attempts: int = 0
    emitted_at: float = 0.0


#: Batches submitted but not stored before polled messages are held back (see :class:`LivePipeline`).
DEFAULT_MAX_BATCHES_IN_FLIGHT = 1
#: Seconds a poll waits while a batch is held back: the batch leaves at most this late once there is room.
HELD_BACK_POLL = 0.01
#: Seconds a partial batch waits for more messages while another batch is in flight.
DEFAULT_LINGER = 1.0


class LivePipeline:
    """Consume, process, commit. Use :func:`stream` unless you need the parts.

    Parameters
    ----------
    consumer : AlertConsumer
        Group member to read from.
    client : distributed.Client
        Cluster the batches run on.
    config : PipelineConfig
        Store, science steps and output topic.
    batch_size : int
        Maximum messages per batch.
    poll_timeout : float
        Seconds a poll waits for messages before a partial batch is sent.
    n_lanes, max_in_flight : int, optional
        As in :func:`~alerce.streams.replay.replay`.
    max_batches_in_flight : int
        Batches submitted but not yet stored before new messages are held back. While the
        cluster is busy, polled messages accumulate (up to ``batch_size``) into the next batch:
        batches stay small (low latency) under light load and grow under heavy load, where larger
        batches amortize the per-batch cost of loading state, correcting and writing. A batch
        holds what arrived while the previous one ran, whatever this number; each alert waits
        behind every batch in flight, so the default 1 has one batch time less latency than 2
        (an alert waits ~1.5 batch times instead of ~2.5) at nearly the same capacity (live
        benchmark, 2 cores: a backlog drained at 559/s against 569/s; see docs/benchmarks.md).
    linger : float
        While another batch is in flight, a partial batch waits up to this many seconds for more
        messages before it is submitted (it leaves at once when full or when nothing is in
        flight, so with one batch in flight, the default, it never lingers). Fewer, fuller
        batches pay the fixed per-batch cost less often: in the live benchmark (350 alerts/s
        offered, 2 cores, three batches in flight) ``linger=1.0`` lowered p95 latency from
        5.4-12 s to 3.7-7.8 s. ``0`` submits as soon as there is room.
    dead_letter : str, optional
        Directory for poison packets (written before their offsets are committed).
    max_attempts : int or None
        Retries of a failing batch before its alerts are dead-lettered (None: retry forever,
        the at-least-once choice for transient faults such as a store outage).
    """

    def __init__(self, consumer: AlertConsumer, client, config: PipelineConfig, *, batch_size: int = 1000,
                 poll_timeout: float = 1.0, n_lanes: int | None = None, max_in_flight: int | None = None,
                 max_batches_in_flight: int = DEFAULT_MAX_BATCHES_IN_FLIGHT, dead_letter: str | None = None,
                 max_attempts: int | None = None, retry_backoff: float = 1.0, archive: str | None = None,
                 linger: float = DEFAULT_LINGER):
        self.consumer, self.client, self.config = consumer, client, config
        self.batch_size, self.poll_timeout = batch_size, poll_timeout
        self.dead_letter, self.max_attempts, self.retry_backoff = dead_letter, max_attempts, retry_backoff
        self.archive = archive
        self.max_batches_in_flight = max(1, int(max_batches_in_flight))
        self._pending: tuple[list, list[MessageRef]] = ([], [])
        self.linger = float(linger)
        self._pending_since = 0.0
        lanes = n_lanes or max(1, sum(client.nthreads().values()))
        self.summary = LiveSummary()
        self._fifo: collections.deque[_InFlight] = collections.deque()
        self._retry: collections.deque[tuple[float, _InFlight]] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.source = pipeline_source()
        build_pipeline(self.source, client, config, n_lanes=lanes,
                       max_in_flight=max_in_flight or 2 * lanes,
                       archive=archive).sink(self._on_result)

    # -- results (streamz event-loop thread) ------------------------------------------------
    def _on_result(self, result) -> None:
        with self._lock:
            entry = self._fifo.popleft()
        failed = isinstance(result, BatchFailed) or bool(result.errors)
        self.summary.batches += 1
        if failed:
            reason = repr(result) if isinstance(result, BatchFailed) else result.errors[0].splitlines()[0]
            self.summary.errors.append(reason)
            entry.attempts += 1
            if self.max_attempts is None or entry.attempts < self.max_attempts:
                self.summary.retries += 1
                delay = min(30.0, self.retry_backoff * 2 ** min(entry.attempts - 1, 5))
                with self._lock:
                    self._retry.append((time.monotonic() + delay, entry))
                return
            dead = [DeadLetter(str(r), f"gave up after {entry.attempts} attempts: {reason}")
                    for r in entry.refs]
            self._write_dead_letters(dead)
            self.summary.bad_alerts += len(dead)
        else:
            s: BatchSummary = result
            self.summary.alerts += s.alerts
            for stage, seconds in s.stages.items():
                self.summary.stages[stage] = self.summary.stages.get(stage, 0.0) + seconds
            self.summary.bad_alerts += s.bad_alerts
            if s.dead_letters:
                self._write_dead_letters(s.dead_letters)
            now = time.time()
            self.summary.latencies.extend(now - r.timestamp for r in entry.refs if r.timestamp)
        self.consumer.done(entry.refs)

    def _write_dead_letters(self, dead: list[DeadLetter]) -> None:
        if self.dead_letter and dead:
            from alerce.io import write_dead_letters

            write_dead_letters(dead, self.dead_letter)

    # -- main loop (caller's thread) -----------------------------------------------------------
    def _emit(self, entry: _InFlight) -> None:
        entry.emitted_at = time.monotonic()
        with self._lock:
            self._fifo.append(entry)
        self.source.emit(entry.item)

    def _emit_due_retries(self) -> None:
        now = time.monotonic()
        due = []
        with self._lock:
            while self._retry and self._retry[0][0] <= now:
                due.append(self._retry.popleft()[1])
        for entry in due:
            self._emit(entry)

    def step(self) -> int:
        """Poll once, submit a batch if the cluster has room, re-submit due retries, commit.

        Returns the number of messages read.
        """
        self._emit_due_retries()
        pending_packets, pending_refs = self._pending
        room = self.batch_size - len(pending_packets)
        n = 0
        if room > 0:
            # while a batch is held back, poll briefly so that it leaves as soon as there is room
            timeout = min(self.poll_timeout, HELD_BACK_POLL) if pending_packets else self.poll_timeout
            packets, refs = self.consumer.poll_batch(room, timeout)
            n = len(packets)
            self.summary.messages += n
            if packets and not pending_packets:
                self._pending_since = time.monotonic()
            pending_packets.extend(packets)
            pending_refs.extend(refs)
        else:
            time.sleep(0.01)  # full batch waiting for room: the rest stays in Kafka
        in_flight = self._batches_in_flight()
        if pending_packets and in_flight < self.max_batches_in_flight and (
                in_flight == 0 or len(pending_packets) >= self.batch_size
                or time.monotonic() - self._pending_since >= self.linger):
            self._flush_pending()
        committed = self.consumer.commit()
        self.summary.commits += bool(committed)
        return n

    def _flush_pending(self) -> None:
        packets, refs = self._pending
        if packets:
            self._pending = ([], [])
            # one contiguous buffer: a single out-of-band frame to the worker, not a pickle per packet
            self._emit(_InFlight(("packets", PacketBundle(packets)), refs))

    def _batches_in_flight(self) -> int:
        with self._lock:
            return len(self._fifo)

    def in_flight(self) -> int:
        """Batches submitted, waiting for a retry or held back (messages polled, not stored)."""
        with self._lock:
            return len(self._fifo) + len(self._retry) + bool(self._pending[0])

    def stop(self) -> None:
        """Ask the loop to stop after the current step (signal-safe)."""
        self._stop.set()

    def run(self, *, max_messages: int | None = None, idle_timeout: float | None = None,
            drain_timeout: float = 300.0) -> LiveSummary:
        """Run until stopped, ``max_messages`` read, or no message for ``idle_timeout`` seconds.

        On exit the in-flight batches are drained (up to ``drain_timeout``), offsets committed and
        the consumer closed.
        """
        t0 = time.perf_counter()
        last_message = time.monotonic()
        try:
            while not self._stop.is_set():
                n = self.step()
                if n:
                    last_message = time.monotonic()
                if max_messages is not None and self.summary.messages >= max_messages:
                    break
                if idle_timeout is not None and not self.in_flight() and \
                        time.monotonic() - last_message > idle_timeout:
                    break
            self._flush_pending()
            deadline = time.monotonic() + drain_timeout
            while self.in_flight() and time.monotonic() < deadline:
                self._emit_due_retries()
                self.consumer.commit()
                time.sleep(0.05)
        finally:
            self.summary.elapsed = time.perf_counter() - t0
            self.consumer.close()
        return self.summary


def stream(
    kafka: str,
    topics: str | Sequence[str],
    group: str,
    store: str = "sqlite:///alerce.db",
    *,
    output_topic: str | None = None,
    output_kafka: str | None = None,
    archive: str | None = None,
    dead_letter: str | None = None,
    client=None,
    scheduler: str | None = None,
    batch_size: int = 1000,
    poll_timeout: float = 1.0,
    max_batches_in_flight: int = DEFAULT_MAX_BATCHES_IN_FLIGHT,
    linger: float = DEFAULT_LINGER,
    features: bool = True,
    stamp_classifier: bool = False,
    lc_classifier: bool = False,
    max_messages: int | None = None,
    idle_timeout: float | None = None,
    consumer_settings: dict | None = None,
    handle_signals: bool = True,
) -> LiveSummary:
    """Process a live Kafka alert stream into a store (and an annotated output topic).

    Parameters
    ----------
    kafka : str
        Bootstrap servers of the input stream.
    topics : str or list of str
        Topic names, a comma list, a glob (``ztf_*_programid1``) or a ``^regex``; patterns follow
        new nightly topics as they appear.
    group : str
        Consumer group (offsets are committed for it).
    store : str
        SQLAlchemy URL of the store.
    output_topic, output_kafka : str, optional
        Publish one annotated Avro message per processed alert (``output_kafka`` defaults to
        ``kafka``); an alert counts as done only when the broker acknowledged its message.
    archive : str, optional
        Directory or fsspec URL where the raw packets are archived per night.
    dead_letter : str, optional
        Directory for poison messages, with their reason.
    client, scheduler
        Dask cluster (see :func:`alerce.streams.cluster.dask_client`).
    batch_size, poll_timeout, max_batches_in_flight, linger
        Batching (see :class:`LivePipeline`): fewer batches in flight and a shorter linger lower the
        latency; more of both leave the workers less idle time under a backlog.
    max_messages, idle_timeout
        Stop conditions (default: run until SIGINT/SIGTERM).
    handle_signals : bool
        Install SIGINT/SIGTERM handlers that drain in-flight work, commit and exit cleanly.
    """
    from alerce.store import Store

    output = OutputConfig(output_kafka or kafka, output_topic) if output_topic else None
    config = PipelineConfig(store_url=store, features=features, stamp_classifier=stamp_classifier,
                            lc_classifier=lc_classifier, output=output)
    Store(store).close()  # create the schema once
    consumer = AlertConsumer(kafka, topics, group, **(consumer_settings or {}))
    with dask_client(client, scheduler=scheduler) as c:
        if features:
            warm_up(c, features=True)
        pipe = LivePipeline(consumer, c, config, batch_size=batch_size, poll_timeout=poll_timeout,
                            max_batches_in_flight=max_batches_in_flight, linger=linger,
                            dead_letter=dead_letter, archive=archive)
        previous = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, lambda *_: pipe.stop())
        try:
            return pipe.run(max_messages=max_messages, idle_timeout=idle_timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
