"""Schema registries for Confluent wire-format messages (Rubin/LSST alerts).

A registry maps an integer schema id (bytes 1-4 of a wire-format message) to a writer schema.
Three implementations:

* :class:`ConfluentSchemaRegistry`: HTTP ``GET {url}/schemas/ids/{id}`` on a Confluent schema
  registry (e.g. Rubin's ``https://usdf-alert-schemas-dev.slac.stanford.edu``), cached.
* :class:`LocalSchemaRegistry`: ``.avsc`` files on disk, by explicit ``{id: path}`` mapping or
  discovered in a directory tree by file name (``lsst.vM_N.alert.avsc`` -> id ``100*M + N``,
  Rubin's convention: v7.4 -> 704).
* :meth:`LocalSchemaRegistry.from_lsst_alert_packet`: the schema files shipped by the optional
  ``lsst-alert-packet`` package, located without importing its (GPL) code.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastavro.schema import load_schema

from .avro import ParsedSchema, make_parsed

_LSST_FILE = re.compile(r"lsst\.v(\d+)_(\d+)\.alert\.avsc$")


class SchemaRegistry(ABC):
    """Map Confluent schema ids to parsed writer schemas (lookups are cached)."""

    def __init__(self) -> None:
        self._cache: dict[int, ParsedSchema] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> ParsedSchema:
        """Parsed schema for ``schema_id``; raises ``KeyError`` if the id is unknown."""
        hit = self._cache.get(schema_id)
        if hit is not None:
            return hit
        with self._lock:
            if schema_id not in self._cache:
                self._cache[schema_id] = make_parsed(self._fetch(schema_id))
            return self._cache[schema_id]

    def version(self, schema_id: int) -> str:
        """A version label for decoded alerts (namespace of the alert record, e.g. ``lsst.v7_4``)."""
        name = self.get(schema_id).name
        return name.rsplit(".", 1)[0] if "." in name else name

    @abstractmethod
    def _fetch(self, schema_id: int) -> Any:
        """Return the schema (dict or JSON text) for an id, or raise ``KeyError``."""


class ConfluentSchemaRegistry(SchemaRegistry):
    """A Confluent schema registry reached over HTTP.

    Parameters
    ----------
    url : str
        Base URL of the registry.
    timeout : float
        Seconds per HTTP request.
    """

    def __init__(self, url: str, *, timeout: float = 10.0):
        super().__init__()
        self.url = url.rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ConfluentSchemaRegistry({self.url!r})"

    def _fetch(self, schema_id: int) -> Any:
        import urllib.error

        try:
            with urllib.request.urlopen(
                f"{self.url}/schemas/ids/{schema_id}", timeout=self.timeout
            ) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise KeyError(schema_id) from None
            raise
        return json.loads(body["schema"])


class LocalSchemaRegistry(SchemaRegistry):
    """Schemas from local ``.avsc`` files (or schema dicts).

    Parameters
    ----------
    mapping : mapping of int to path, str or dict
        Schema id -> ``.avsc`` path (named types referenced from sibling files are resolved by
        ``fastavro.schema.load_schema``) or an already loaded schema dict.
    """

    def __init__(self, mapping: Mapping[int, Any]):
        super().__init__()
        self.mapping = dict(mapping)

    def __repr__(self) -> str:
        return f"LocalSchemaRegistry(ids={sorted(self.mapping)})"

    def _fetch(self, schema_id: int) -> Any:
        entry = self.mapping[schema_id]  # KeyError -> unknown id
        if isinstance(entry, (str, Path)):
            return load_schema(str(entry))
        return entry

    @classmethod
    def from_directory(
        cls, directory: str | Path, mapping: Mapping[int, str] | None = None
    ) -> LocalSchemaRegistry:
        """Registry over a directory of ``.avsc`` files.

        Parameters
        ----------
        directory : path
            Searched recursively.
        mapping : mapping of int to str, optional
            Schema id -> file name (relative to ``directory``). Without it, ids are derived from
            ``lsst.vM_N.alert.avsc`` file names as ``100*M + N``.
        """
        root = Path(directory)
        if mapping is not None:
            return cls({int(k): root / v for k, v in mapping.items()})
        found = {}
        for path in sorted(root.rglob("*.avsc")):
            m = _LSST_FILE.search(path.name)
            if m:
                found[100 * int(m.group(1)) + int(m.group(2))] = path
        if not found:
            raise FileNotFoundError(f"no lsst.vM_N.alert.avsc files under {root}")
        return cls(found)

    @classmethod
    def from_lsst_alert_packet(cls) -> LocalSchemaRegistry:
        """Registry over the schemas shipped by the optional ``lsst-alert-packet`` package.

        Only the package's ``.avsc`` data files are read (found on ``sys.path``); none of its
        (GPL-3.0) code is imported.
        """
        # Search sys.path for the package's data directory: nothing of it is imported.
        for entry in sys.path:
            root = Path(entry or ".") / "lsst" / "alert" / "packet" / "schema"
            if root.is_dir():
                break
        else:
            raise ImportError(
                "the optional 'lsst-alert-packet' package is not installed "
                "(pip install lsst-alert-packet), or pass a LocalSchemaRegistry/"
                "ConfluentSchemaRegistry explicitly"
            )
        return cls.from_directory(root)


def default_registry() -> SchemaRegistry | None:
    """The registry used when none is given: ``lsst-alert-packet`` schemas if installed, else None."""
    global _DEFAULT
    if _DEFAULT is _UNSET:
        try:
            _DEFAULT = LocalSchemaRegistry.from_lsst_alert_packet()
        except (ImportError, FileNotFoundError, ModuleNotFoundError):
            _DEFAULT = None
    return _DEFAULT


_UNSET: Any = object()
_DEFAULT: Any = _UNSET
