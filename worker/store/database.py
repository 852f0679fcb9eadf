"""The database: an engine per process, transactions, migrations; SQLite tuned for several
writer processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Insert, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30
# Values per IN (...) list: far under SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 5000


def in_chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """`items` in slices that fit one IN (...) list."""
    for start in range(0, len(items), IN_CHUNK):
        yield items[start:start + IN_CHUNK]


def table_row(model: type[Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A row keyed by the model's attribute names (`from_`), keyed by its columns' (`from`),
    for Core statements on the model's table."""
    keys = _column_keys(model)
    return {keys[name]: value for name, value in row.items()}


@cache
def _column_keys(model: type[Any]) -> dict[str, str]:
    return {prop.key: prop.columns[0].key for prop in inspect(model).column_attrs}


def insert_unless_stored(dialect_name: str, model: type[Any], key: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT (key) DO NOTHING: the unique key decides what is a repeat, in
    the INSERT itself (no savepoint, no failed statement), on both backends."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(model).on_conflict_do_nothing(index_elements=list(key))


def _tune_sqlite(engine: Engine) -> None:
    """WAL, a busy timeout, and BEGIN IMMEDIATE.

    pysqlite opens transactions lazily and SQLite upgrades a read lock to a
    write lock only if no one else wrote meanwhile (else SQLITE_BUSY at once,
    the busy timeout notwithstanding). Taking the write lock at BEGIN makes
    concurrent read-then-write transactions queue on the busy timeout instead.
    This is SQLAlchemy's documented recipe for pysqlite transactions.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        _tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration (what `dialer db upgrade` does).

    On SQLite, foreign keys are off meanwhile, as SQLite's procedure for altering a table
    asks: dropping the old copy of a table must not fire ON DELETE actions on the rows that
    point to it. The check after the migrations makes sure nothing was left dangling.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # on the driver's connection: inside a transaction the pragma is a no-op
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                cfg = alembic_config(engine)
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("a migration left rows pointing at missing rows")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


class Database:
    """One database URL's engine, made on first use, and its transactions.

    The embedded SQLite default migrates itself on first use; a server database is
    migrated explicitly (`dialer db upgrade`), as operators expect.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._making = threading.Lock()

    @property
    def engine(self) -> Engine:
        # One engine even when a producer's threads first use it at once: two would each
        # migrate a new SQLite file, and one's connection fails on the other's lock.
        if self._engine is None:
            with self._making:
                if self._engine is None:
                    engine = make_engine(self.url)
                    if engine.dialect.name == "sqlite" and not inspect(engine).has_table(
                            "alembic_version"):
                        upgrade(engine)
                    self._engine = engine
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """session() without the ORM, for hot paths that only run Core statements: the
        Session's unit of work and identity map cost more than the statements there."""
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """For a hot path whose statements each stand alone: on PostgreSQL each commits by
        itself, without the BEGIN and COMMIT round trips. On SQLite this is transaction(),
        committed on leaving: its BEGIN IMMEDIATE makes a write wait on the busy timeout
        rather than fail on a lock it cannot upgrade."""
        if self.engine.dialect.name != "postgresql":
            with self.transaction() as connection:
                yield connection
            return
        with self.engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")

    def dispose(self) -> None:
        """Close every pooled connection (tests and benchmarks that drop the database)."""
        if self._engine is not None:
            self._engine.dispose()

    def dispose_after_fork(self) -> None:
        """Prefork children must not share the parent's pooled connections."""
        if self._engine is not None:
            self._engine.dispose(close=False)
