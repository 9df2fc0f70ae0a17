"""Declarative base with a naming convention (so migrations name constraints stably) and UTC time."""
from __future__ import annotations

import enum
import logging
import sqlite3
import secrets
from datetime import datetime, timezone
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.orm import DeclarativeBase, Session, registry, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    """Random public ids: nothing a user sees can be guessed from another. 32 hex digits, as a
    UUID4's were, of 128 random bits from the OS (a UUID4 has 122): without building a UUID
    object, an id costs 0.6 µs instead of 2."""
    return secrets.token_hex(16)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on SQLite and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite keeps no zone
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def code_point_string(length: int) -> sa.types.TypeEngine:
    """A string column ordered by code point on both databases: SQLite's BINARY order, and
    PostgreSQL's "C" collation whatever the database's own. A range `key >= p AND key < p || U+10FFFF`
    on its index is then exactly "starts with p" on both (a language's collation may sort a string
    outside the range of its own prefix)."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def derived_default(source: str, derive: Callable[[object], object]) -> Callable:
    """A column default: derive(the `source` column's value in the same INSERT), for an ORM flush
    and a Core insert alike (one row or many). Pair it with keep_derived for the ORM's updates."""
    def default(context):
        return derive(context.get_current_parameters().get(source))
    return default


def keep_derived(attribute, target: str, derive: Callable[[object], object]) -> None:
    """Whenever the mapped `attribute` is set on an object (constructor, assignment), its `target`
    attribute is set to derive(the new value), flushed with it. A Core UPDATE of the source column
    (sa.update) is not seen here: it must set the target too."""
    @sa.event.listens_for(attribute, "set")
    def _set(obj, value, _old, _initiator):
        setattr(obj, target, derive(value))


def write_derived(conn, table: str, target: str, source: str, pk: str, derive: Callable[[object], object], *,
                  only: str = "", params: dict | None = None, batch: int = 10_000) -> None:
    """For a migration: set `target` to derive(`source`) in the rows of `table` whose `source` is
    not NULL (and that match the SQL condition `only`, with `params`), `batch` rows at a time in
    the caller's transaction, keyed by the integer primary key `pk`: memory stays flat, and a
    migration that fails leaves nothing half done. On PostgreSQL one UPDATE a batch (the values
    joined in as arrays)."""
    postgres = conn.dialect.name == "postgresql"
    select = sa.text(f"SELECT {pk}, {source} FROM {table} WHERE {pk} > :last AND {source} IS NOT NULL "
                     f"{'AND (' + only + ')' if only else ''} ORDER BY {pk} LIMIT {batch}")
    if postgres:
        update = sa.text(f"UPDATE {table} AS t SET {target} = v.k FROM unnest(CAST(:ids AS integer[]), "
                         f"CAST(:keys AS text[])) AS v(id, k) WHERE t.{pk} = v.id")
    else:
        update = sa.text(f"UPDATE {table} SET {target} = :k WHERE {pk} = :id")
    last = 0
    while True:
        rows = conn.execute(select, {"last": last, **(params or {})}).all()
        if not rows:
            return
        values = [(row[0], derive(row[1])) for row in rows]
        if postgres:
            conn.execute(update, {"ids": [i for i, _ in values], "keys": [k for _, k in values]})
        else:
            conn.execute(update, [{"id": i, "k": k} for i, k in values])
        last = rows[-1][0]


_COMPILED_ONCE: dict[tuple[str, str], sa.TextClause] = {}


def dialect_insert(dialect: sa.Dialect) -> Callable[..., sa.Insert]:
    """The database kind's own insert(), the one with ON CONFLICT (PostgreSQL's, else SQLite's)."""
    return pg_insert if dialect.name == "postgresql" else sqlite_insert


def insert_on_conflict(name: str, dialect: sa.Dialect,
                       build: Callable[[Callable[..., sa.Insert]], sa.Executable]) -> sa.TextClause:
    """An INSERT … ON CONFLICT statement compiled once per database kind, as SQL text.

    SQLAlchemy never caches the dialects' own insert() (`inherit_cache = False` on PostgreSQL's and
    SQLite's), so a statement built with it is compiled again at every execution: on the webhook's
    accept and a gift's booking that was a fifth of the time. `build(insert)` makes the statement
    with `insert` (the dialect's) and its values as named `bindparam`s; the text it compiles to is
    cached like any statement, and its parameters keep their types (enums, UTC times)."""
    key = (name, dialect.name)
    text = _COMPILED_ONCE.get(key)
    if text is None:
        postgres = dialect.name == "postgresql"
        stmt = build(dialect_insert(dialect))
        # The base dialects write `:name` parameters with no driver casts (psycopg's adds `::TYPE`,
        # which text() cannot read); the driver's own conversion happens at execution.
        compiled = stmt.compile(dialect=(PGDialect if postgres else SQLiteDialect)(paramstyle="named"))
        text = sa.text(str(compiled)).bindparams(
            *(sa.bindparam(bind.key, type_=bind.type) for bind in compiled.binds.values()))
        _COMPILED_ONCE[key] = text
    return text


def as_written(cls: type, values: dict) -> object:
    """An instance of the mapped `cls` holding exactly `values`, the columns of a row that one
    statement has just written, filled as SQLAlchemy fills a row it loads (straight into the
    instance's dict, no attribute events). It is transient, so `commit_keeping` leaves it alone;
    added to a session it would insert these same values. The constructor's attribute events cost
    25 µs for a pledge's 16 columns, this 1 µs (the test-mode pledge's hot path)."""
    mapper = sa.inspect(cls)
    if not mapper.configured:  # done by the first query; asking configure_mappers each time costs 2 µs
        sa.orm.configure_mappers()
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values)
    return obj


def commit_keeping(session, *objs) -> None:
    """Commit the caller's use case, keeping the values it just wrote on `objs` (no SELECT to
    reload what we know: each row is exactly what was inserted or updated). Nothing to commit (the
    objects were written by a statement of their own, as a test-mode pledge is): nothing done,
    and no session made to find that out (10 µs with its close, on the pledge's hot path)."""
    if isinstance(session, scoped_session):
        if not session.registry.has():  # no session made in this scope: nothing was written through one
            return
        session = session()
    if (not session.in_transaction() and not (session.new or session.dirty or session.deleted)
            and all(sa.inspect(obj).transient for obj in objs)):
        return
    session.flush()  # defaults (created_at...) are set now
    known = [(obj, {a.key: getattr(obj, a.key) for a in sa.inspect(obj).mapper.column_attrs}) for obj in objs]
    session.commit()
    for obj, values in known:
        for key, value in values.items():
            set_committed_value(obj, key, value)


def on_commit(session, action: Callable[[], None]) -> None:
    """Do `action` once the session's transaction commits: what must follow the commit (a task
    enqueued for the worker, which must find the rows) without the service committing itself.
    The caller's one commit runs it; a rollback forgets it. The action emits no SQL on this
    session (it is between transactions then): give it ids, not objects. A savepoint
    (begin_nested) is not the commit: its release runs nothing, and its rollback forgets only
    what was registered inside it."""
    if isinstance(session, scoped_session):
        session = session()
    session.info.setdefault("filmfund.on_commit", []).append((session.get_nested_transaction(), action))


def _inside(transaction, savepoint) -> bool:
    while transaction is not None:
        if transaction is savepoint:
            return True
        transaction = transaction.parent
    return False


@sa.event.listens_for(Session, "after_commit")
def _after_commit(session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint released: the transaction goes on
    for _registered_in, action in session.info.pop("filmfund.on_commit", []):
        action()


@sa.event.listens_for(Session, "after_rollback")
def _after_rollback(session) -> None:
    savepoint = session.get_nested_transaction()  # the one rolled back, or None for the whole transaction
    if savepoint is None:
        session.info.pop("filmfund.on_commit", None)
        return
    pending = session.info.get("filmfund.on_commit")
    if pending:
        pending[:] = [(where, action) for where, action in pending if not _inside(where, savepoint)]


def str_enum(enum_cls: type[enum.Enum], length: int = 32) -> sa.Enum:
    """Store a StrEnum as a plain string (with a CHECK), by value, portable across databases."""
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        create_constraint=True,
        name=enum_cls.__name__.lower(),
    )


class Base(DeclarativeBase):
    # Every `Mapped[datetime]` is a zone-aware UTC column.
    registry = registry(metadata=sa.MetaData(naming_convention=NAMING),
                        type_annotation_map={datetime: UTCDateTime()})


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """The embedded SQLite serves a threaded web server and a worker at once: WAL lets readers
    run beside the one writer, busy_timeout makes a writer wait instead of failing, and
    foreign keys are enforced as on PostgreSQL. secure_delete zeroes what a deleted or rewritten
    row held, so an erased donor's data is not left in the file's free space (`forget_erased`
    clears the write-ahead log's old copies)."""
    if isinstance(dbapi_conn, sqlite3.Connection):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def forget_erased(engine: sa.Engine) -> None:
    """After an erasure's commit: on SQLite, copy the log into the file and empty it, so that the
    pages as they were before the erasure (a donor's email, their address) are not kept in the
    `-wal` file until it happens to be reused. A reader holding an old snapshot makes this wait
    for it (busy_timeout) or leave the log for the next checkpoint, logged. PostgreSQL: nothing
    (its files and WAL are the operator's to secure, README "Production")."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        busy, _log_frames, _copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.warning("the database's write-ahead log could not be emptied after an erasure (a reader held it); "
                    "it is emptied by the next checkpoint")
