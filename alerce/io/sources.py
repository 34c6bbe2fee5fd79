"""Where packets come from: files, directories, globs, nightly tarballs and fsspec URLs."""

from __future__ import annotations

import glob as _glob
import os
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .errors import AlertDecodeError

#: A source accepted by :func:`iter_packets`.
Source = str | os.PathLike

_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Packet:
    """One raw packet: an Avro container file, a tarball member or a Kafka message value.

    Attributes
    ----------
    source : str
        File path, ``tarball::member``, URL or ``topic/partition/offset``.
    payload : bytes
        The raw bytes.
    """

    source: str
    payload: bytes


class PacketBundle(Sequence[Packet]):
    """Packets in one contiguous byte buffer: a sequence of :class:`Packet` that ships cheaply.

    A list of packets is pickled packet by packet, and the bytes are copied again into the
    message; the bundle's single numpy buffer travels to a Dask worker as one out-of-band frame.
    Indexing returns a :class:`Packet` with its own copy of the bytes.
    """

    def __init__(self, packets: Iterable[Packet]):
        packets = list(packets)
        self.sources = [p.source for p in packets]
        self.offsets = np.zeros(len(packets) + 1, dtype=np.int64)
        np.cumsum([len(p.payload) for p in packets], out=self.offsets[1:])
        self.buffer = np.frombuffer(b"".join(p.payload for p in packets), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        start, end = self.offsets[i], self.offsets[i + 1]
        return Packet(self.sources[i], self.buffer[start:end].tobytes())

    def take(self, indices) -> PacketBundle:
        """The packets at ``indices`` (in that order) as a new bundle (one copy of their bytes)."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, ends = self.offsets[indices], self.offsets[indices + 1]
        out = PacketBundle([])
        out.sources = [self.sources[i] for i in indices.tolist()]
        out.offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(ends - starts, out=out.offsets[1:])
        pieces = [self.buffer[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        out.buffer = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.uint8)
        return out

    def __repr__(self) -> str:
        return f"PacketBundle({len(self)} packets, {self.buffer.nbytes:,} bytes)"


def is_tarball(name: str) -> bool:
    """Whether a file name looks like a (gzipped) tar archive."""
    return name.lower().endswith(_TAR_SUFFIXES)


def _tar_packets(fileobj: IO[bytes], name: str) -> Iterator[Packet]:
    mode = "r|" if name.lower().endswith(".tar") else "r|gz"
    try:
        with tarfile.open(fileobj=fileobj, mode=mode) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - regular files always have data
                    continue
                yield Packet(f"{name}::{member.name}", handle.read())
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise AlertDecodeError(name, None, f"unreadable tarball ({type(exc).__name__}: {exc})") from None


def _local_files(path: str, recursive: bool, suffix: str) -> list[str]:
    p = Path(path)
    if p.is_dir():
        it = p.rglob("*") if recursive else p.glob("*")
        return sorted(str(f) for f in it if f.is_file() and (f.name.endswith(suffix) or is_tarball(f.name)))
    if _GLOB_CHARS & set(path):
        return sorted(f for f in _glob.glob(path, recursive=recursive) if os.path.isfile(f))
    if not p.exists():
        raise AlertDecodeError(path, None, "no such file or directory")
    return [path]


def _url_files(url: str, recursive: bool, suffix: str):
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    if _GLOB_CHARS & set(path):
        names = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = fs.find(path) if recursive else [f for f in fs.ls(path, detail=False) if fs.isfile(f)]
        names = sorted(f for f in found if f.endswith(suffix) or is_tarball(f))
    elif fs.exists(path):
        names = [path]
    else:
        raise AlertDecodeError(url, None, "no such file or directory")
    for name in names:
        yield fs, name, fs.unstrip_protocol(name)


def iter_source(source: Source, *, recursive: bool = True, suffix: str = ".avro") -> Iterator[Packet]:
    """Packets of a single source (see :func:`iter_packets`); raises :class:`AlertDecodeError`."""
    text = os.fspath(source)
    if "://" in text and not text.startswith("file://"):
        for fs, name, full in _url_files(text, recursive, suffix):
            try:
                with fs.open(name, "rb") as fh:
                    if is_tarball(name):
                        yield from _tar_packets(fh, full)
                    else:
                        yield Packet(full, fh.read())
            except AlertDecodeError:
                raise
            except (OSError, ValueError) as exc:
                raise AlertDecodeError(full, None, f"cannot read ({type(exc).__name__}: {exc})") from None
        return
    if text.startswith("file://"):
        text = text[len("file://"):]
    for name in _local_files(text, recursive, suffix):
        try:
            if is_tarball(name):
                with open(name, "rb") as fh:
                    yield from _tar_packets(fh, name)
            else:
                with open(name, "rb") as fh:
                    yield Packet(name, fh.read())
        except AlertDecodeError:
            raise
        except OSError as exc:
            raise AlertDecodeError(name, None, f"cannot read ({type(exc).__name__}: {exc})") from None


def _as_list(sources: Source | Iterable[Source]) -> list[Source]:
    if isinstance(sources, (str, os.PathLike)):
        return [sources]
    return list(sources)


def iter_packets(
    sources: Source | Iterable[Source], *, recursive: bool = True, suffix: str = ".avro"
) -> Iterator[Packet]:
    """Yield one :class:`Packet` per Avro container file or tarball member.

    Parameters
    ----------
    sources : path, str or list of them
        A file, a directory (files ending in ``suffix`` and tarballs inside it), a glob
        (``alerts/*.avro``), a nightly tarball (``ztf_public_YYYYMMDD.tar.gz``: streamed in
        ``r|gz`` mode, never extracted to disk) or an fsspec URL (``file://``, ``s3://``,
        ``memory://`` ...; directories, globs and tarballs work there too).
    recursive : bool
        Descend into sub-directories (and ``**`` in globs).
    suffix : str
        File-name ending selected inside directories (explicit files are always read).

    Raises
    ------
    AlertDecodeError
        A source does not exist or cannot be read (e.g. a truncated tarball; packets before
        the damage have already been yielded). :func:`alerce.io.read_alerts` turns these into
        dead letters instead.
    """
    for source in _as_list(sources):
        yield from iter_source(source, recursive=recursive, suffix=suffix)
