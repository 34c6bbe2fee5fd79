"""Kafka plumbing: client configuration, the alert consumer and a delivery-aware producer.

confluent-kafka is the ``kafka`` extra and is imported lazily. Credentials (SASL for the Rubin
stream) are read where the client is built, from the environment or a config file, and never travel
inside Dask task arguments.

Environment variables
---------------------
``ALERCE_KAFKA_CONFIG``
    Path to a JSON file of librdkafka settings merged into every client configuration.
``ALERCE_KAFKA_SECURITY_PROTOCOL``, ``ALERCE_KAFKA_SASL_MECHANISM``, ``ALERCE_KAFKA_SASL_USERNAME``, ``ALERCE_KAFKA_SASL_PASSWORD``
    Shorthands for ``security.protocol``, ``sasl.mechanism``, ``sasl.username``, ``sasl.password``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alerce.io import Packet
from alerce.streams.offsets import ContiguousOffsetTracker

_ENV_KEYS = {
    "ALERCE_KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "ALERCE_KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "ALERCE_KAFKA_SASL_USERNAME": "sasl.username",
    "ALERCE_KAFKA_SASL_PASSWORD": "sasl.password",
}


def _confluent():
    try:
        import confluent_kafka
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Kafka support needs confluent-kafka: pip install 'alerce-broker[kafka]'"
        ) from exc
    return confluent_kafka


def kafka_config(bootstrap: str, **settings) -> dict:
    """librdkafka settings for ``bootstrap`` plus credentials from the environment/config file.

    Parameters
    ----------
    bootstrap : str
        ``host:port[,host:port]`` of the brokers.
    **settings
        Extra librdkafka settings, with ``_`` standing for ``.`` (``group_id="x"``).
    """
    conf: dict = {"bootstrap.servers": bootstrap}
    path = os.environ.get("ALERCE_KAFKA_CONFIG")
    if path:
        with open(path) as fh:
            conf.update(json.load(fh))
    for env, key in _ENV_KEYS.items():
        if os.environ.get(env):
            conf[key] = os.environ[env]
    conf.update({k.replace("_", "."): v for k, v in settings.items()})
    return conf


def redact(conf: dict) -> dict:
    """Copy of a configuration with secrets masked (for logs)."""
    return {k: ("***" if "password" in k or "secret" in k else v) for k, v in conf.items()}


def subscription(topics: str | Sequence[str]) -> list[str]:
    """Normalize a topic list or pattern for ``Consumer.subscribe``.

    A pattern with glob characters (``ztf_*_programid1``) becomes a librdkafka regex
    (``^ztf_.*_programid1$``); regexes starting with ``^`` are kept. A regex subscription follows
    new topics as they appear (ZTF publishes one topic per night), at the metadata refresh interval.
    """
    if isinstance(topics, str):
        topics = [t for t in topics.split(",") if t]
    out = []
    for t in topics:
        if t.startswith("^"):
            out.append(t)
        elif any(ch in t for ch in "*?["):
            out.append("^" + re.escape(t).replace(r"\*", ".*").replace(r"\?", ".") + "$")
        else:
            out.append(t)
    return out


@dataclass(frozen=True)
class MessageRef:
    """Where a consumed message came from."""

    topic: str
    partition: int
    offset: int
    timestamp: float = 0.0  # producer/broker timestamp, seconds since the epoch (0 if unknown)
    epoch: int = 0  # tracker epoch of the partition when the message was read

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"


class AlertConsumer:
    """A consumer-group member handing out batches of alert packets with offset bookkeeping.

    Offsets are committed only through :meth:`commit`, and only up to the contiguous prefix of
    messages marked :meth:`done` (see :class:`~alerce.streams.offsets.ContiguousOffsetTracker`).
    On rebalance, revoked partitions are committed as far as possible and forgotten.
    """

    def __init__(self, bootstrap: str, topics: str | Sequence[str], group: str, *,
                 offset_reset: str = "earliest", metadata_refresh_ms: int = 10_000, **settings):
        ck = _confluent()
        self._ck = ck
        defaults = dict(
            group_id=group,
            enable_auto_commit=False,
            enable_auto_offset_store=False,
            auto_offset_reset=offset_reset,
            topic_metadata_refresh_interval_ms=metadata_refresh_ms,
            max_poll_interval_ms=900_000,
        )
        conf = kafka_config(bootstrap, **{**defaults, **settings})
        self.consumer = ck.Consumer(conf)
        self.tracker = ContiguousOffsetTracker()
        self._lock = threading.Lock()
        self.consumer.subscribe(subscription(topics), on_assign=self._on_assign,
                                on_revoke=self._on_revoke)

    # -- rebalance -----------------------------------------------------------------------
    def _on_assign(self, consumer, partitions) -> None:
        with self._lock:
            for p in partitions:
                self.tracker.forget((p.topic, p.partition))

    def _on_revoke(self, consumer, partitions) -> None:
        self.commit()
        with self._lock:
            for p in partitions:
                self.tracker.forget((p.topic, p.partition))

    # -- consuming -----------------------------------------------------------------------
    def poll_batch(self, max_messages: int, timeout: float) -> tuple[list[Packet], list[MessageRef]]:
        """Up to ``max_messages`` packets (waits at most ``timeout`` seconds)."""
        msgs = self.consumer.consume(num_messages=max_messages, timeout=timeout)
        packets, refs = [], []
        with self._lock:
            for m in msgs:
                if m.error() is not None:
                    if m.error().code() == self._ck.KafkaError._PARTITION_EOF:
                        continue
                    raise self._ck.KafkaException(m.error())
                kind, ts = m.timestamp()
                epoch = self.tracker.received((m.topic(), m.partition()), m.offset())
                ref = MessageRef(m.topic(), m.partition(), m.offset(), ts / 1000.0 if kind else 0.0,
                                 epoch)
                packets.append(Packet(source=str(ref), payload=m.value() or b""))
                refs.append(ref)
        return packets, refs

    def done(self, refs: Iterable[MessageRef]) -> None:
        """Mark messages as durably processed (their offsets may now be committed)."""
        by_partition: dict[tuple[str, int, int], list[int]] = {}
        for r in refs:
            by_partition.setdefault((r.topic, r.partition, r.epoch), []).append(r.offset)
        with self._lock:
            for (topic, partition, epoch), offsets in by_partition.items():
                self.tracker.done((topic, partition), offsets, epoch)

    def commit(self) -> dict[tuple[str, int], int]:
        """Synchronously commit every committable offset; return what was committed."""
        with self._lock:
            todo = self.tracker.committable()
        if not todo:
            return {}
        tps = [self._ck.TopicPartition(t, p, off) for (t, p), off in todo.items()]
        try:
            self.consumer.commit(offsets=tps, asynchronous=False)
        except self._ck.KafkaException as exc:
            if exc.args and exc.args[0].code() == self._ck.KafkaError._NO_OFFSET:
                return {}
            raise
        with self._lock:
            for key, off in todo.items():
                self.tracker.mark_committed(key, off)
        return todo

    def pending(self) -> int:
        with self._lock:
            return self.tracker.pending()

    def close(self) -> None:
        """Commit what is committable and leave the group."""
        try:
            self.commit()
        finally:
            self.consumer.close()


class DeliveryError(RuntimeError):
    """A produced message was not acknowledged by the broker."""


class ReliableProducer:
    """An idempotent producer whose :meth:`send_all` returns only when every message is acknowledged."""

    def __init__(self, bootstrap: str, **settings):
        ck = _confluent()
        conf = kafka_config(bootstrap, enable_idempotence=True, acks="all", linger_ms=20,
                            message_timeout_ms=60_000, **settings)
        self.producer = ck.Producer(conf)

    def send_all(self, topic: str, values: Iterable[bytes], keys: Iterable[bytes | None] | None = None,
                 timeout: float = 60.0) -> int:
        """Produce messages and wait for all acknowledgements; raise :class:`DeliveryError` otherwise."""
        errors: list[str] = []
        acked = [0]

        def _report(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                acked[0] += 1

        values = list(values)
        keys = list(keys) if keys is not None else [None] * len(values)
        for key, value in zip(keys, values):
            while True:
                try:
                    self.producer.produce(topic, value=value, key=key, on_delivery=_report)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.producer.poll(0)
        remaining = self.producer.flush(timeout)
        if remaining or errors or acked[0] != len(values):
            raise DeliveryError(
                f"{len(values) - acked[0]} of {len(values)} messages to {topic!r} not acknowledged"
                + (f": {errors[0]}" if errors else "")
            )
        return acked[0]


_PRODUCERS: dict[str, ReliableProducer] = {}


def cached_producer(bootstrap: str) -> ReliableProducer:
    """One producer per bootstrap address per process (Dask workers reuse it)."""
    prod = _PRODUCERS.get(bootstrap)
    if prod is None:
        prod = _PRODUCERS[bootstrap] = ReliableProducer(bootstrap)
    return prod


def close_producers(timeout: float = 5.0) -> None:
    """Flush and drop this process's cached producers (e.g. before their broker goes away)."""
    while _PRODUCERS:
        _, prod = _PRODUCERS.popitem()
        prod.producer.flush(timeout)


def produce_packets(bootstrap: str, topic: str, payloads: Iterable[bytes],
                    keys: Iterable[bytes | None] | None = None) -> int:
    """Produce raw payloads (tests, simulators, dead letters) and wait for acknowledgement."""
    return cached_producer(bootstrap).send_all(topic, payloads, keys)


def create_topics(bootstrap: str, topics: Iterable[str], partitions: int = 1,
                  timeout: float = 30.0) -> None:
    """Create topics (existing ones are left alone)."""
    ck = _confluent()
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(kafka_config(bootstrap))
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1)
                                   for t in topics], operation_timeout=timeout)
    for fut in futures.values():
        try:
            fut.result(timeout)
        except ck.KafkaException as exc:
            if exc.args[0].code() != ck.KafkaError.TOPIC_ALREADY_EXISTS:
                raise


