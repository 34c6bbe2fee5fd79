"""The store: ALeRCE's tables in SQLite (default) or PostgreSQL, with idempotent bulk upserts.

>>> from alerce.store import Store
>>> with Store("sqlite:///alerce.db") as store:          # doctest: +SKIP
...     store.write({"detection": detections, "object": objects})
...     state = store.load_state(["ZTF19aazzpje"])

See ``docs/store.md``.
"""

from .convert import StoreDataError
from .engine import MissingDriverError
from .schema import METADATA, STATE_TABLES, TABLE_NAMES, UPSERT_GUARDS, build_metadata, primary_key
from .store import Store, StoreWriteError
from .version import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    StoreError,
    StoreVersionError,
    upgrade,
)

__all__ = [
    "METADATA", "MIGRATIONS", "SCHEMA_VERSION", "STATE_TABLES", "TABLE_NAMES", "UPSERT_GUARDS",
    "Migration", "MissingDriverError", "Store", "StoreDataError", "StoreError", "StoreVersionError",
    "StoreWriteError", "build_metadata", "primary_key", "upgrade",
]
