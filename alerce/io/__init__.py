"""Alert decoding: raw packets (ZTF/LSST Avro, Confluent wire format, Parquet) -> AlertBatch.

Main entry points: :func:`read_alerts` (paths, tarballs, URLs, Parquet), :func:`iter_packets` +
:func:`decode_packets` (any packet source, e.g. Kafka message values), :func:`decode_packet_strict`
(raise instead of dead-lettering), :mod:`alerce.io.stamps` (cutouts).
"""

from .avro import SchemaCache
from .deadletter import read_dead_letters, write_dead_letters
from .decode import decode_packet_strict, decode_packets, detect_survey
from .errors import AlertDecodeError
from .parquet import read_parquet_alerts
from .reader import read_alerts
from .registry import (
    ConfluentSchemaRegistry,
    LocalSchemaRegistry,
    SchemaRegistry,
    default_registry,
)
from .sources import Packet, iter_packets
from .stamps import decode_stamp, stamp_hdulist

__all__ = [
    "AlertDecodeError", "ConfluentSchemaRegistry", "LocalSchemaRegistry", "Packet",
    "SchemaCache", "SchemaRegistry", "decode_packet_strict", "decode_packets", "decode_stamp",
    "default_registry", "detect_survey", "iter_packets", "read_alerts", "read_dead_letters",
    "read_parquet_alerts", "stamp_hdulist", "write_dead_letters",
]
