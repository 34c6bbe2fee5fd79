"""One call from files / tarballs / URLs / Parquet to an :class:`~alerce.batch.AlertBatch`."""

from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterable, Iterator

from ..batch import AlertBatch, DeadLetter
from .deadletter import write_dead_letters
from .decode import _USE_DEFAULT, decode_packets
from .errors import AlertDecodeError
from .parquet import read_parquet_alerts
from .registry import SchemaRegistry
from .sources import Packet, Source, _as_list, iter_source


def _is_parquet(source: Source) -> bool:
    return os.fspath(source).lower().endswith(".parquet")


def _parquet_paths(source: Source) -> list[str]:
    text = os.fspath(source)
    if "*" in text or "?" in text:
        if "://" in text:
            import fsspec

            fs, path = fsspec.core.url_to_fs(text)
            return [fs.unstrip_protocol(p) for p in sorted(fs.glob(path))]
        return sorted(_glob.glob(text, recursive=True))
    return [text]


def read_alerts(
    sources: Source | Iterable[Source],
    *,
    survey: str = "auto",
    keep_stamps: bool = True,
    dead_letter: str | os.PathLike | None = None,
    registry: SchemaRegistry | None = _USE_DEFAULT,
    recursive: bool = True,
    strict: bool = False,
    engine: str = "auto",
) -> AlertBatch:
    """Read alerts from files, directories, globs, tarballs, fsspec URLs and Parquet files.

    Parameters
    ----------
    sources : path, str or list of them
        As for :func:`~alerce.io.iter_packets`; sources ending in ``.parquet`` (globs too) are read
        with :func:`~alerce.io.read_parquet_alerts`.
    survey : {"auto", "ztf", "lsst"}
    keep_stamps : bool
    dead_letter : path, optional
        Directory where dead letters are also written (:func:`write_dead_letters`).
    registry : SchemaRegistry, optional
        For Confluent wire-format packets (see :func:`decode_packets`).
    recursive : bool
    strict : bool
        Raise :class:`AlertDecodeError` at the first bad packet, row or unreadable source.
    engine : {"auto", "numba", "fastavro"}
        ZTF record decoder (see :func:`decode_packets`).

    Returns
    -------
    AlertBatch
        Everything decoded; unreadable sources and bad packets are in ``dead_letters``.
    """
    source_errors: list[DeadLetter] = []
    parts: list[AlertBatch] = []
    avro_sources = []
    for source in _as_list(sources):
        if _is_parquet(source):
            for path in _parquet_paths(source):
                try:
                    parts.append(read_parquet_alerts(path, survey=survey, keep_stamps=keep_stamps,
                                                     strict=strict))
                except AlertDecodeError as exc:
                    if strict:
                        raise
                    source_errors.append(DeadLetter(exc.location, str(exc), None))
        else:
            avro_sources.append(source)

    def packets() -> Iterator[Packet]:
        for source in avro_sources:
            try:
                yield from iter_source(source, recursive=recursive)
            except AlertDecodeError as exc:
                if strict:
                    raise
                source_errors.append(DeadLetter(exc.location, str(exc), None))

    if avro_sources or not parts:
        parts.insert(0, decode_packets(packets(), survey=survey, keep_stamps=keep_stamps,
                                       registry=registry, strict=strict, engine=engine))
    out = AlertBatch.concat(parts) if len(parts) > 1 else parts[0]
    out.dead_letters = [d for p in parts for d in p.dead_letters] + source_errors
    if dead_letter is not None and out.dead_letters:
        write_dead_letters(out.dead_letters, dead_letter)
    return out
