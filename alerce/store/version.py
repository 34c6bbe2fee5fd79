"""Schema versioning: the ``schema_version`` table, the version check and versioned migrations.

A fresh store is created with the current schema and stamped with :data:`SCHEMA_VERSION`. A store
stamped with an older version must be upgraded (``alerce db upgrade`` / :func:`upgrade`), which applies
the :data:`MIGRATIONS` between the two versions, each in its own transaction, recording each one in
``schema_version``.

To change the schema: edit :mod:`alerce.store.schema` (what fresh stores get), bump
:data:`SCHEMA_VERSION`, and append a :class:`Migration` that turns the previous version into the new
one (``ALTER TABLE`` ...).
"""

from __future__ import annotations

import datetime as dt
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .engine import WRITE_OPTION
from .schema import METADATA, SQLITE_WITHOUT_ROWID, TABLE_NAMES, build_metadata

log = logging.getLogger(__name__)

#: Version of the schema this code writes.
SCHEMA_VERSION = 2

#: Advisory-lock key serializing schema changes on PostgreSQL.
_PG_LOCK_KEY = zlib.crc32(b"alerce.store.schema") & 0x7FFFFFFF


class StoreError(RuntimeError):
    """A store cannot be opened or written."""


class StoreVersionError(StoreError):
    """The store was created by another schema version than this code's."""


@dataclass(frozen=True)
class Migration:
    """One schema step: ``apply(conn)`` turns version ``version - 1`` into ``version``."""

    version: int
    description: str
    apply: Callable[[Connection], None]


def postgres_extras(conn: Connection) -> bool:
    """PostgreSQL only: enable q3c and index ``object(meanra, meandec)``; False when q3c is absent."""
    if conn.dialect.name != "postgresql":
        return False
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS q3c")
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS ix_object_q3c ON object (q3c_ang2ipix(meanra, meandec))"
            )
        return True
    except sa.exc.DBAPIError as exc:
        log.warning("q3c extension not available, no cone-search index: %s", exc.orig)
        return False


def _initial(conn: Connection) -> None:
    build_metadata(sqlite_without_rowid=False).create_all(conn, checkfirst=True)
    postgres_extras(conn)


def _sqlite_without_rowid(conn: Connection) -> None:
    """SQLite only: rebuild the :data:`~alerce.store.schema.SQLITE_WITHOUT_ROWID` tables without rowid.

    Each table is renamed, created anew from the current schema (with its indexes), filled in key
    order and the old copy dropped, all in the migration's transaction. Tables already without
    rowid are left alone; PostgreSQL has nothing to change.
    """
    if conn.dialect.name != "sqlite":
        return
    for name in SQLITE_WITHOUT_ROWID:
        ddl = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).scalar()
        if ddl is None or "WITHOUT ROWID" in ddl.upper():
            continue
        table = METADATA.tables[name]
        old = f"_{name}_with_rowid"
        for index in sa.inspect(conn).get_indexes(name):
            conn.exec_driver_sql(f'DROP INDEX "{index["name"]}"')
        conn.exec_driver_sql(f'ALTER TABLE "{name}" RENAME TO "{old}"')
        table.create(conn)
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        key = ", ".join(f'"{c.name}"' for c in table.primary_key.columns)
        conn.exec_driver_sql(f'INSERT INTO "{name}" ({cols}) SELECT {cols} FROM "{old}" ORDER BY {key}')
        conn.exec_driver_sql(f'DROP TABLE "{old}"')


#: Every migration, in order; ``MIGRATIONS[i].version == i + 1``.
MIGRATIONS: list[Migration] = [
    Migration(1, "initial schema (ALeRCE Gen-1 tables + store extras)", _initial),
    Migration(2, "SQLite: narrow key-heavy tables WITHOUT ROWID", _sqlite_without_rowid),
]


def stored_version(conn: Connection) -> int | None:
    """Version recorded in the store; None for an empty database.

    Raises
    ------
    StoreVersionError
        The database holds store tables but no ``schema_version`` table.
    """
    names = set(sa.inspect(conn).get_table_names())
    if "schema_version" in names:
        v = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar()
        return int(v) if v is not None else 0
    if names & set(TABLE_NAMES):
        raise StoreVersionError(
            "this database holds alerce tables but no schema_version table (not created by "
            "alerce.store); create a new store or stamp it by hand"
        )
    return None


def _stamp(conn: Connection, version: int, description: str) -> None:
    table = METADATA.tables["schema_version"]
    conn.execute(table.insert().values(version=version, description=description,
                                       applied_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")


def _write_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(**{WRITE_OPTION: True})


def check_version(version: int | None, url: str) -> None:
    """Raise :class:`StoreVersionError` unless ``version`` is the current one."""
    current = SCHEMA_VERSION
    if version is None or version == current:
        return
    if version < current:
        raise StoreVersionError(
            f"store {url} has schema version {version}, this alerce needs version {current}: "
            f"run `alerce db upgrade --store {url}` (alerce.store.upgrade) to migrate it"
        )
    raise StoreVersionError(
        f"store {url} has schema version {version}, newer than this alerce's {current}: "
        "upgrade the alerce package"
    )


def ensure_schema(engine: Engine, url: str, *, create: bool = True) -> int:
    """Check the store's version, creating the schema in an empty database when ``create``.

    Returns the store's version. Several processes may call this at once: creation happens under
    the write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL advisory lock) after a second check.
    """
    with engine.connect() as conn:
        version = stored_version(conn)
        conn.rollback()
    if version is None:
        if not create:
            raise StoreError(f"store {url} is empty and create=False")
        with _write_connection(engine) as conn, conn.begin():
            _lock(conn)
            version = stored_version(conn)
            if version is None:
                METADATA.create_all(conn, checkfirst=True)
                postgres_extras(conn)
                _stamp(conn, SCHEMA_VERSION, f"created at version {SCHEMA_VERSION}")
                version = SCHEMA_VERSION
    check_version(version, url)
    return version


def upgrade(url: str, *, engine: Engine | None = None) -> int:
    """Bring the store at ``url`` to :data:`SCHEMA_VERSION` (creating it when empty).

    Applies every pending :class:`Migration` in order, each in its own transaction that also
    records it in ``schema_version``. Returns the final version.

    Raises
    ------
    StoreVersionError
        The store is newer than this code, or a migration is missing.
    """
    from .engine import create_engine

    own = engine is None
    engine = engine or create_engine(url)
    try:
        target = SCHEMA_VERSION
        while True:
            with _write_connection(engine) as conn, conn.begin():
                _lock(conn)
                version = stored_version(conn)
                if version is None:
                    METADATA.create_all(conn, checkfirst=True)
                    postgres_extras(conn)
                    _stamp(conn, target, f"created at version {target}")
                    return target
                if version > target:
                    check_version(version, url)
                if version == target:
                    return version
                step = next((m for m in MIGRATIONS if m.version == version + 1), None)
                if step is None:
                    raise StoreVersionError(f"no migration from schema version {version} to {version + 1}")
                log.info("store %s: applying migration %d (%s)", url, step.version, step.description)
                step.apply(conn)
                _stamp(conn, step.version, step.description)
    finally:
        if own:
            engine.dispose()
