"""Low-level Avro decoding: container files (any codec) and Confluent wire-format messages.

``fastavro.reader`` re-parses the writer schema of every file. Alert streams repeat the same few
schemas millions of times, so this module reads the container header itself, caches the parsed
schema by its JSON text (:class:`SchemaCache`) and decodes the records of each block with
``fastavro.schemaless_reader``. Every failure raises :class:`~alerce.io.errors.AlertDecodeError`
naming the source and the byte offset.
"""

from __future__ import annotations

import io
import json
import zlib
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema, schemaless_reader

from .errors import AlertDecodeError

#: First four bytes of every Avro object container file.
AVRO_MAGIC = b"Obj\x01"
#: Length of the container sync marker.
SYNC_SIZE = 16
#: Confluent wire format: magic byte 0, then a 4-byte big-endian schema id.
CONFLUENT_MAGIC = 0
CONFLUENT_HEADER = 5


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one zig-zag varint ``long`` at ``pos``; return ``(value, new_pos)``."""
    n = 0
    shift = 0
    while True:
        c = buf[pos]  # IndexError on truncation, handled by the caller
        pos += 1
        n |= (c & 0x7F) << shift
        if not c & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    return (n >> 1) ^ -(n & 1), pos


@dataclass(frozen=True)
class ParsedSchema:
    """A writer schema parsed once: the fastavro form plus facts used to route records."""

    parsed: Any
    name: str
    fields: tuple[str, ...]
    json_text: str


class SchemaCache:
    """Parse each distinct writer-schema JSON text once."""

    def __init__(self, maxsize: int = 256):
        self._cache: dict[bytes | str, ParsedSchema] = {}
        self.maxsize = maxsize

    def get(self, text: bytes | str) -> ParsedSchema:
        """Return the parsed schema for ``text`` (JSON), parsing it on first use."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        raw = json.loads(text)
        out = make_parsed(raw, text if isinstance(text, str) else text.decode())
        if len(self._cache) >= self.maxsize:
            self._cache.pop(next(iter(self._cache)))
        self._cache[text] = out
        return out


def make_parsed(schema: Any, json_text: str | None = None) -> ParsedSchema:
    """Build a :class:`ParsedSchema` from a schema dict (parsed or not)."""
    parsed = parse_schema(schema)
    name = parsed.get("name", "") if isinstance(parsed, dict) else str(parsed)
    fields = tuple(f["name"] for f in parsed.get("fields", ())) if isinstance(parsed, dict) else ()
    return ParsedSchema(parsed, name, fields, json_text or json.dumps(schema))


#: Process-wide cache used by default.
DEFAULT_CACHE = SchemaCache()


def _decompress(codec: bytes, data: bytes) -> bytes:
    if codec == b"null":
        return data
    if codec == b"deflate":
        return zlib.decompress(data, -15)
    if codec == b"snappy":
        try:
            import cramjam
        except ImportError as exc:  # pragma: no cover - cramjam ships with fastavro's extras
            raise ValueError("snappy codec needs the 'cramjam' package (pip install cramjam)") from exc
        # Avro's snappy blocks end with a 4-byte big-endian CRC32 of the uncompressed data.
        out = bytes(cramjam.snappy.decompress_raw(bytes(data[:-4])))
        if zlib.crc32(out) != int.from_bytes(bytes(data[-4:]), "big"):
            raise ValueError("snappy block CRC32 mismatch")
        return out
    raise ValueError(f"unsupported Avro codec {codec.decode(errors='replace')!r}")


def read_header_meta(buf, pos: int = 4) -> tuple[dict[str, bytes], int]:
    """The metadata map of a container header (from ``pos``, after the magic) and the position after it.

    ``buf`` is ``bytes`` or a byte ``memoryview``. Raises ``IndexError``, ``ValueError`` or
    ``UnicodeDecodeError`` on truncated or corrupt data.
    """
    meta: dict[str, bytes] = {}
    while True:
        count, pos = _read_long(buf, pos)
        if count == 0:
            return meta, pos
        if count < 0:
            count = -count
            _, pos = _read_long(buf, pos)
        for _ in range(count):
            size, pos = _read_long(buf, pos)
            key = bytes(buf[pos : pos + size]).decode()
            pos += size
            size, pos = _read_long(buf, pos)
            if size < 0 or pos + size > len(buf):
                raise IndexError
            meta[key] = bytes(buf[pos : pos + size])
            pos += size


def read_container(
    payload: bytes, source: str, cache: SchemaCache = DEFAULT_CACHE
) -> tuple[ParsedSchema, list[dict]]:
    """Decode every record of an Avro object container file.

    Parameters
    ----------
    payload : bytes
        The whole container file.
    source : str
        Name used in error messages.
    cache : SchemaCache
        Where parsed writer schemas are cached.

    Returns
    -------
    schema : ParsedSchema
    records : list of dict

    Raises
    ------
    AlertDecodeError
        Bad magic, truncated header or block, sync-marker mismatch, unknown codec, corrupt record.
    """
    schema, blocks = read_container_blocks(payload, source, cache)
    records: list[dict] = []
    for data, count, at in blocks:
        records.extend(_decode_block(data, count, schema, source, at))
    return schema, records


def read_container_blocks(
    payload: bytes, source: str, cache: SchemaCache = DEFAULT_CACHE
) -> tuple[ParsedSchema, list[tuple[bytes, int, int]]]:
    """Parse a container's header and blocks without decoding records.

    Returns
    -------
    schema : ParsedSchema
    blocks : list of (decompressed bytes or memoryview, record count, byte offset in the file)
    """
    if payload[:4] != AVRO_MAGIC:
        raise AlertDecodeError(source, 0, f"not an Avro container file (magic {payload[:4]!r})")
    pos = 4
    try:
        meta, pos = read_header_meta(payload, pos)
    except (IndexError, UnicodeDecodeError, ValueError):
        raise AlertDecodeError(source, pos, "truncated or corrupt container header") from None
    sync = payload[pos : pos + SYNC_SIZE]
    pos += SYNC_SIZE
    if "avro.schema" not in meta or len(sync) != SYNC_SIZE:
        raise AlertDecodeError(source, pos, "container header has no schema or sync marker")
    try:
        schema = cache.get(meta["avro.schema"])
    except Exception as exc:
        raise AlertDecodeError(source, 4, f"invalid writer schema: {exc}") from None
    codec = meta.get("avro.codec", b"null") or b"null"
    blocks: list[tuple[bytes, int, int]] = []
    end = len(payload)
    view = memoryview(payload)  # block data without copies (null codec)
    while pos < end:
        block_at = pos
        try:
            count, pos = _read_long(payload, pos)
            size, pos = _read_long(payload, pos)
        except (IndexError, ValueError):
            raise AlertDecodeError(source, block_at, "truncated block header") from None
        if count < 0 or size < 0 or pos + size + SYNC_SIZE > end:
            raise AlertDecodeError(
                source, block_at,
                f"truncated block: needs {size} bytes + sync marker, {end - pos} left",
            )
        data = view[pos : pos + size]
        pos += size
        if payload[pos : pos + SYNC_SIZE] != sync:
            raise AlertDecodeError(source, pos, "sync marker mismatch (corrupt block)")
        pos += SYNC_SIZE
        try:
            data = _decompress(codec, data)
        except Exception as exc:
            raise AlertDecodeError(source, block_at, f"corrupt block, cannot decompress: {exc}") from None
        blocks.append((data, count, block_at))
    return schema, blocks


def _decode_block(data: bytes, count: int, schema: ParsedSchema, source: str, at: int) -> list:
    bio = io.BytesIO(data)
    out = []
    try:
        for _ in range(count):
            out.append(schemaless_reader(bio, schema.parsed, None))
    except Exception as exc:
        raise AlertDecodeError(
            source, at, f"corrupt record {len(out)} of block ({type(exc).__name__}: {exc})"
        ) from None
    if bio.tell() != len(data):
        raise AlertDecodeError(
            source, at,
            f"block decoded {count} records but used {bio.tell()} of {len(data)} bytes "
            "(corrupt data or wrong schema)",
        )
    return out


def read_wire(payload: bytes, source: str, registry) -> tuple[ParsedSchema, int, dict]:
    """Decode a Confluent wire-format message (magic 0, 4-byte schema id, schemaless body).

    Parameters
    ----------
    payload : bytes
    source : str
    registry : alerce.io.registry.SchemaRegistry or None

    Returns
    -------
    schema, schema_id, record
    """
    schema, schema_id = wire_schema(payload, source, registry)
    body = payload[CONFLUENT_HEADER:]
    (record,) = _decode_block(body, 1, schema, source, CONFLUENT_HEADER)
    return schema, schema_id, record


def wire_schema(payload: bytes, source: str, registry) -> tuple[ParsedSchema, int]:
    """Check a wire-format header and resolve its schema id (``AlertDecodeError`` if bad)."""
    if len(payload) == 0:
        raise AlertDecodeError(source, 0, "empty packet")
    if payload[0] != CONFLUENT_MAGIC:
        raise AlertDecodeError(
            source, 0,
            f"wrong magic byte 0x{payload[0]:02x} (expected 0x00 for Confluent wire format "
            "or b'Obj\\x01' for an Avro container file)",
        )
    if len(payload) < CONFLUENT_HEADER:
        raise AlertDecodeError(source, 0, f"message too short ({len(payload)} bytes) for wire format")
    schema_id = int.from_bytes(payload[1:5], "big")
    if registry is None:
        raise AlertDecodeError(
            source, 1, f"schema id {schema_id}: no schema registry configured "
            "(pass registry=alerce.io.LocalSchemaRegistry(...) or ConfluentSchemaRegistry(url))",
        )
    try:
        schema = registry.get(schema_id)
    except KeyError:
        raise AlertDecodeError(source, 1, f"unknown schema id {schema_id} in {registry!r}") from None
    except Exception as exc:
        raise AlertDecodeError(
            source, 1, f"schema id {schema_id}: registry lookup failed ({type(exc).__name__}: {exc})"
        ) from None
    return schema, schema_id
