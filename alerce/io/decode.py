"""Packets -> :class:`~alerce.batch.AlertBatch`: survey detection, dead letters, strict mode."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..batch import AlertBatch, DeadLetter
from .avro import (
    AVRO_MAGIC,
    CONFLUENT_HEADER,
    DEFAULT_CACHE,
    ParsedSchema,
    SchemaCache,
    _decode_block,
    read_container_blocks,
    wire_schema,
)
from .errors import AlertDecodeError
from .lsst import build_lsst_frames, lsst_oid
from .registry import SchemaRegistry, default_registry
from .sources import Packet
from .ztf import build_ztf_frames

SURVEYS = ("ztf", "lsst")
_USE_DEFAULT: Any = object()


def detect_survey(schema: ParsedSchema) -> str:
    """Survey of a writer schema: ``"ztf"``, ``"lsst"`` or ``"atlas"`` (else ``ValueError``).

    ZTF: record ``ztf.alert`` (or Spark's ``topLevelRecord``) with ``objectId`` and ``candidate``.
    LSST: any record with a ``diaSource`` field (``lsst.vM_N.alert``, ``elasticc.*``,
    ``topLevelRecord``). ATLAS: record ``atlas.alert``.
    """
    name = schema.name or ""
    fields = set(schema.fields)
    if name.startswith("atlas"):
        return "atlas"
    if "diaSource" in fields:
        return "lsst"
    if "candidate" in fields and "objectId" in fields:
        return "ztf"
    shown = ", ".join(sorted(fields)[:8])
    raise ValueError(f"unknown alert schema {name!r} (top-level fields: {shown}...)")


def _check_record(survey: str, rec: dict) -> None:
    if survey == "ztf":
        cand = rec.get("candidate")
        if cand is None or rec.get("objectId") is None:
            raise ValueError("ZTF record without objectId or candidate")
        if cand.get("candid") is None or cand.get("jd") is None:
            raise ValueError("ZTF candidate without candid or jd")
    else:
        if rec.get("diaSource") is None:
            raise ValueError("LSST record without diaSource")
        lsst_oid(rec)


def _schema_version(survey: str, schema: ParsedSchema | None, rec: dict, wire: str | None) -> str | None:
    if survey == "ztf":
        v = rec.get("schemavsn")
        return None if v is None else str(v)
    if rec.get("lsst_schema_version"):
        return str(rec["lsst_schema_version"])
    if wire:
        return wire
    name = schema.name if schema is not None else ""
    return name.rsplit(".", 1)[0] if "." in name else None


def unpack_packet(
    packet: Packet,
    *,
    survey: str = "auto",
    registry: SchemaRegistry | None = None,
    cache: SchemaCache = DEFAULT_CACHE,
) -> tuple[str, ParsedSchema, list[tuple[bytes, int, int]], str | None]:
    """Check a packet's framing and schema without decoding records.

    Returns
    -------
    survey, schema, blocks, wire_version
        ``blocks`` is a list of (decompressed record bytes, record count, byte offset).

    Raises
    ------
    AlertDecodeError
        Corrupt/truncated framing, wrong magic byte, unknown schema or schema id, unsupported
        survey, or a survey different from the one requested.
    """
    payload = packet.payload
    src = packet.source
    wire_version = None
    if payload[:4] == AVRO_MAGIC:
        schema, blocks = read_container_blocks(payload, src, cache)
    else:
        schema, schema_id = wire_schema(payload, src, registry)
        blocks = [(payload[CONFLUENT_HEADER:], 1, CONFLUENT_HEADER)]
        try:
            wire_version = registry.version(schema_id)
        except Exception:  # pragma: no cover - the schema was just fetched
            wire_version = None
    try:
        found = detect_survey(schema)
    except ValueError as exc:
        raise AlertDecodeError(src, 0, str(exc)) from None
    if found not in SURVEYS:
        raise AlertDecodeError(
            src, 0, f"unsupported survey {found!r} (schema {schema.name!r}); "
            f"supported: {', '.join(SURVEYS)}",
        )
    if survey != "auto" and found != survey:
        raise AlertDecodeError(src, 0, f"expected a {survey!r} alert, got {found!r} ({schema.name!r})")
    if not any(count for _, count, _ in blocks):
        raise AlertDecodeError(src, None, "container holds no alert")
    return found, schema, blocks, wire_version


def records_of(
    packet: Packet, found: str, schema: ParsedSchema, blocks, wire_version: str | None
) -> tuple[list[dict], list[str], list[str | None]]:
    """Decode the records of an unpacked packet with fastavro (``AlertDecodeError`` if bad)."""
    src = packet.source
    records: list[dict] = []
    for data, count, at in blocks:
        records.extend(_decode_block(data, count, schema, src, at))
    for i, rec in enumerate(records):
        try:
            _check_record(found, rec)
        except ValueError as exc:
            raise AlertDecodeError(src, None, f"record {i}: {exc}") from None
    if len(records) == 1:
        sources = [src]
    else:
        sources = [f"{src}#{i}" for i in range(len(records))]
    versions = [_schema_version(found, schema, r, wire_version) for r in records]
    return records, sources, versions


def decode_one(
    packet: Packet,
    *,
    survey: str = "auto",
    registry: SchemaRegistry | None = None,
    cache: SchemaCache = DEFAULT_CACHE,
) -> tuple[str, list[dict], list[str], list[str | None]]:
    """Decode one packet into ``(survey, records, sources, schema_versions)`` with fastavro."""
    found, schema, blocks, wire_version = unpack_packet(
        packet, survey=survey, registry=registry, cache=cache
    )
    return (found, *records_of(packet, found, schema, blocks, wire_version))


def build_frames(
    survey: str,
    records: Sequence[dict],
    sources: Sequence[str],
    versions: Sequence[str | None],
    *,
    keep_stamps: bool,
    payloads: Sequence[bytes | None] | None = None,
    dead_letters: list[DeadLetter] | None = None,
) -> AlertBatch:
    """Frames of one survey's records; a record that breaks the builder becomes a dead letter.

    The whole list is converted in one columnar pass; only if that fails are the records tried
    one by one to find the offending ones (their ``payloads`` go to ``dead_letters``).
    """
    build: Callable[..., dict]
    if survey == "ztf":
        def build(recs, srcs, vsns):
            return build_ztf_frames(recs, srcs, keep_stamps=keep_stamps)
    else:
        def build(recs, srcs, vsns):
            return build_lsst_frames(recs, srcs, vsns, keep_stamps=keep_stamps)
    try:
        return AlertBatch(**build(records, sources, versions))
    except Exception:
        if dead_letters is None:
            raise
    good = []
    for i in range(len(records)):
        try:
            build(records[i : i + 1], sources[i : i + 1], versions[i : i + 1])
            good.append(i)
        except Exception as exc:
            dead_letters.append(DeadLetter(
                sources[i], f"{sources[i]}: cannot map {survey} record "
                f"({type(exc).__name__}: {exc})", payloads[i] if payloads else None,
            ))
    return AlertBatch(**build([records[i] for i in good], [sources[i] for i in good],
                              [versions[i] for i in good]))


def decode_packets(
    packets: Iterable[Packet],
    *,
    survey: str = "auto",
    keep_stamps: bool = True,
    registry: SchemaRegistry | None = _USE_DEFAULT,
    strict: bool = False,
    cache: SchemaCache = DEFAULT_CACHE,
    engine: str = "auto",
    chunk_size: int = 2000,
) -> AlertBatch:
    """Decode raw packets into one columnar :class:`~alerce.batch.AlertBatch`.

    Parameters
    ----------
    packets : iterable of Packet
        Avro container files (ZTF 3.0-4.02 or LSST; codecs null/deflate/snappy; one or several
        alerts each) and/or Confluent wire-format messages (LSST).
    survey : {"auto", "ztf", "lsst"}
        Expected survey; with a specific value, packets of another survey are dead letters.
    keep_stamps : bool
        Keep the raw cutout bytes in ``batch.stamps``.
    registry : SchemaRegistry or None
        Resolves wire-format schema ids. Default: the ``lsst-alert-packet`` schemas when that
        optional package is installed, else none (wire-format packets become dead letters).
    strict : bool
        Raise :class:`AlertDecodeError` on the first bad packet instead of dead-lettering it.
    cache : SchemaCache
        Cache of parsed writer schemas.
    engine : {"auto", "numba", "fastavro"}
        Record decoder for ZTF packets: ``"numba"`` (schema-compiled columnar decoder, several
        times faster; used by ``"auto"`` whenever the schema is supported) or ``"fastavro"``
        (dict per record). LSST packets always use fastavro.
    chunk_size : int
        Packets decoded together (bounds memory; frames of all chunks are concatenated).

    Returns
    -------
    AlertBatch
        Rows grouped by survey and writer schema (packet order within a group); bad packets in
        ``dead_letters``.
    """
    if survey not in ("auto",) + SURVEYS:
        raise ValueError(f"survey must be 'auto', 'ztf' or 'lsst', not {survey!r}")
    if engine not in ("auto", "numba", "fastavro"):
        raise ValueError(f"engine must be 'auto', 'numba' or 'fastavro', not {engine!r}")
    reg = None
    reg_loaded = registry is not _USE_DEFAULT
    if reg_loaded:
        reg = registry
    dead: list[DeadLetter] = []
    parts: list[AlertBatch] = []
    pending: list[tuple[Packet, str, ParsedSchema, list, str | None]] = []

    def fail(packet: Packet, exc: AlertDecodeError) -> None:
        if strict:
            raise exc
        dead.append(DeadLetter(exc.location, str(exc), packet.payload))

    def flush() -> None:
        if pending:
            parts.extend(_decode_pending(pending, keep_stamps, engine, strict, fail, dead))
            pending.clear()

    for packet in packets:
        if not reg_loaded and packet.payload[:4] != AVRO_MAGIC:
            reg, reg_loaded = default_registry(), True
        try:
            found, schema, blocks, wire_version = unpack_packet(
                packet, survey=survey, registry=reg, cache=cache
            )
        except AlertDecodeError as exc:
            fail(packet, exc)
            continue
        pending.append((packet, found, schema, blocks, wire_version))
        if len(pending) >= chunk_size:
            flush()
    flush()
    parts = [p for p in parts if len(p.alerts)]
    if not parts:
        parts = [AlertBatch(**build_ztf_frames([], [], keep_stamps=keep_stamps))]
    out = parts[0] if len(parts) == 1 else AlertBatch.concat(parts)
    out.dead_letters = dead
    return out


def _decode_pending(pending, keep_stamps, engine, strict, fail, dead) -> list[AlertBatch]:
    """Decode a chunk of unpacked packets: numba per ZTF schema, fastavro for the rest."""
    from .vm_columns import program_for, ztf_vm_frames

    parts: list[AlertBatch] = []
    by_schema: dict[str, list] = {}
    generic: dict[str, tuple[list, list, list, list]] = {s: ([], [], [], []) for s in SURVEYS}
    for packet, found, schema, blocks, wire_version in pending:
        program = (program_for(schema) if found == "ztf" and engine != "fastavro" else None)
        if program is not None:
            by_schema.setdefault(schema.json_text, [schema, program, []])[2].append(
                (packet, blocks, wire_version))
            continue
        try:
            records, sources, versions = records_of(packet, found, schema, blocks, wire_version)
        except AlertDecodeError as exc:
            fail(packet, exc)
            continue
        recs, srcs, vsns, pays = generic[found]
        recs.extend(records)
        srcs.extend(sources)
        vsns.extend(versions)
        pays.extend([packet.payload] * len(records))
    for schema, program, items in by_schema.values():
        frames, failures = ztf_vm_frames(schema, program, items, keep_stamps=keep_stamps)
        for packet, exc in failures:
            fail(packet, exc)
        if frames is not None:
            parts.append(AlertBatch(**frames))
    for s, (recs, srcs, vsns, pays) in generic.items():
        if recs:
            parts.append(build_frames(s, recs, srcs, vsns, keep_stamps=keep_stamps,
                                      payloads=pays, dead_letters=None if strict else dead))
    return parts


def decode_packet_strict(packet: Packet, **kwargs: Any) -> AlertBatch:
    """Decode one packet, raising :class:`AlertDecodeError` (source, offset, reason) if it is bad."""
    return decode_packets([packet], strict=True, **kwargs)
