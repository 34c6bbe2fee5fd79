"""Engines for the two supported back ends: SQLite (default) and PostgreSQL (psycopg 3).

SQLite
    WAL journal (readers never block the writer), ``synchronous=NORMAL`` (durable against process
    crashes; the last transactions may be lost on power loss), checkpoints every 64 MiB of WAL,
    a busy timeout, and write transactions opened with ``BEGIN IMMEDIATE`` so that several
    processes (Dask workers) writing the same file wait for the write lock instead of failing with
    "database is locked" when a read transaction tries to upgrade itself.
PostgreSQL
    ``postgresql+psycopg://user@host:port/db`` (``postgresql://`` is rewritten to use psycopg 3).
    psycopg is imported lazily; without it the error names the ``postgres`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import time

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

#: Default time (seconds) a SQLite writer waits for the write lock before giving up.
DEFAULT_BUSY_TIMEOUT = 120.0

#: WAL pages (4 KiB) after which a commit copies the WAL back into the database file. SQLite's
#: default (1000) made nearly every pipeline batch (~80k feature rows) pay a checkpoint inside
#: its write transaction; 64 MiB checkpoints once every few batches and writes each hot page once.
SQLITE_WAL_AUTOCHECKPOINT = 16_384

#: Execution option marking a connection whose transaction will write (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "alerce_write"


class MissingDriverError(ImportError):
    """The database driver for a URL is not installed."""


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; PostgreSQL URLs without a driver get ``+psycopg`` (psycopg 3)."""
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "postgresql" and u.drivername != "postgresql+psycopg":
        raise ValueError(f"unsupported PostgreSQL driver {u.drivername!r}: use postgresql+psycopg:// (psycopg 3)")
    return u


def _sqlite_engine(u: URL, busy_timeout: float) -> Engine:
    memory = u.database in (None, "", ":memory:")
    if not memory:
        parent = os.path.dirname(os.path.abspath(u.database))
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"cannot create SQLite store {u.database!r}: directory {parent!r} does not exist")
    kwargs: dict = {"connect_args": {"timeout": busy_timeout, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        if not memory:
            _switch_to_wal(cur, busy_timeout)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=OFF")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - exercised through every test
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _switch_to_wal(cur, busy_timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the lock.

    Switching a new (rollback-journal) file to WAL needs an exclusive lock. When another process
    holds the write lock at that moment, SQLite reports "database is locked" at once instead of
    calling the busy handler (it would risk a deadlock), so processes racing to create a store
    need this retry. The mode is stored in the file: later connections find it set.
    """
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # sqlite3.OperationalError; the driver module stays implicit
            if not is_retryable(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)


def _postgres_engine(u: URL) -> Engine:
    if importlib.util.find_spec("psycopg") is None:
        raise MissingDriverError(
            f"PostgreSQL store {u.render_as_string(hide_password=True)!r} needs psycopg 3: "
            "pip install 'alerce-broker[postgres]'"
        )
    return sa.create_engine(u, pool_pre_ping=True)


def create_engine(url: str | URL, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """A configured SQLAlchemy engine for a store URL (``sqlite:///...`` or ``postgresql...``).

    Raises
    ------
    MissingDriverError
        PostgreSQL URL without psycopg installed.
    ValueError
        Unsupported back end.
    """
    u = normalize_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(u, busy_timeout)
    if backend == "postgresql":
        return _postgres_engine(u)
    raise ValueError(f"unsupported store URL {u.render_as_string(hide_password=True)!r}: use sqlite:/// or postgresql://")


def is_retryable(exc: BaseException) -> bool:
    """Errors after which the whole (rolled back) transaction can simply be run again."""
    orig = getattr(exc, "orig", exc)
    name = type(orig).__name__
    if name in ("DeadlockDetected", "SerializationFailure", "LockNotAvailable"):
        return True
    msg = str(orig).lower()
    return "database is locked" in msg or "database is busy" in msg or "deadlock detected" in msg
