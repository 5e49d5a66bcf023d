"""Engines and sessions for the prediction store, the schema check, and the errors a
user sees when the database is wrong, unreachable or goes away.

SQLite (the default, a file under var/) is brought up to date on first use; PostgreSQL
is migrated explicitly by `digitlab db upgrade`, and a schema that is behind is refused
with a message naming that command.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

from digitlab.store import migrate

SUPPORTED = ("sqlite", "postgresql+psycopg")
URL_HELP = "use sqlite:///path/to/file.db or postgresql+psycopg://user:password@host:5432/dbname"
PG_CONNECT_ARGS = {"connect_timeout": 5, "application_name": "digitlab"}


class StoreError(Exception):
    """The database is misconfigured, unreachable, behind, or refused a write."""


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise StoreError(f"database URL {url!r} is not a URL; {URL_HELP}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver we ship
    if parsed.drivername not in SUPPORTED:
        raise StoreError(f"unsupported database {parsed.drivername!r}; {URL_HELP}")
    return parsed


def display(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for `url`, without connecting yet."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args=PG_CONNECT_ARGS,
    )


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        try:
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of the SQLite database: {exc}") from None
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # SQLAlchemy's "begin" below opens transactions
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")  # wait for other writers, not fail
        cursor.execute("PRAGMA foreign_keys = ON")  # off by default in SQLite
        cursor.execute("PRAGMA journal_mode = WAL")  # readers do not block the writer
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that upgrades later can
        # fail at once with "database is locked" when several processes write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def translate_errors(engine: Engine | None = None) -> Iterator[None]:
    """Database failures as a StoreError with one readable line."""
    where = f" at {display(engine.url)}" if engine is not None else ""
    try:
        yield
    except exc.DBAPIError as error:
        raise StoreError(_describe(error.orig, error.connection_invalidated, where)) from None
    except (psycopg.Error, sqlite3.Error) as error:  # raised by the raw COPY path
        raise StoreError(_describe(error, False, where)) from None
    except exc.SQLAlchemyError as error:
        raise StoreError(f"database error{where}: {error}") from None


def _describe(orig: BaseException | None, invalidated: bool, where: str) -> str:
    detail = " ".join(str(orig).split()) if orig is not None else "unknown error"
    if isinstance(orig, psycopg.IntegrityError | sqlite3.IntegrityError):
        return f"the database{where} refused the write ({detail}); nothing of it was stored"
    if invalidated or isinstance(orig, psycopg.OperationalError | sqlite3.OperationalError):
        return (
            f"database{where} unavailable ({detail}); "
            "the unfinished transaction was rolled back, committed data is intact"
        )
    return f"database error{where}: {detail}"


def open_engine(url: str) -> Engine:
    """Connect, check the schema (upgrading an embedded SQLite one), return the engine."""
    engine = make_engine(url)
    ping(engine)
    with translate_errors(engine):
        current = migrate.current_revision(engine)
        head = migrate.head_revision()
        if current == head:
            return engine
        if engine.dialect.name == "sqlite":
            migrate.upgrade(engine)
            return engine
        raise StoreError(schema_behind_message(engine, current, head))


def ping(engine: Engine) -> None:
    """Connect once, so a wrong or unreachable URL fails here with a clear message."""
    try:
        with engine.connect():
            pass
    except exc.DBAPIError as error:
        detail = " ".join(str(error.orig).split())
        raise StoreError(
            f"cannot connect to the database at {display(engine.url)}: {detail}"
        ) from None


def schema_behind_message(engine: Engine, current: str | None, head: str) -> str:
    where = display(engine.url)
    if current is None:
        return f"the database at {where} has no digitlab schema yet; run `digitlab db upgrade`"
    known = {rev.revision for rev in migrate.all_revisions()}
    if current not in known:
        return (
            f"the database at {where} is at schema revision {current}, newer than this "
            f"digitlab knows (head {head}); upgrade digitlab"
        )
    return (
        f"the database at {where} is at schema revision {current}, this digitlab needs "
        f"{head}; run `digitlab db upgrade`"
    )


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One session, one transaction: committed on success, rolled back on any error."""
    with (
        translate_errors(engine),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session
