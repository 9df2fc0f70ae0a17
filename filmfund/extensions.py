"""Extensions, created unbound and bound to the app in create_app (Flask's app-factory pattern)."""
import ipaddress
import logging
import math
import os
import threading
import time
import weakref
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterator, NamedTuple

import sqlalchemy as sa
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.exceptions import TooManyRequests

from filmfund.db import Base

db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
# The client address is the socket's own: X-Forwarded-For is not trusted unless a proxy is
# configured (FILMFUND_TRUSTED_PROXIES), so a spoofed header cannot dodge a limit.
# No X-RateLimit-* headers on every answer: each costs a second storage call (a Redis round trip
# on the pledge path); a refused request still says when to come back (Retry-After, errors.py).


def client_key() -> str:
    """Whom a per-client limit counts: the client's address, an IPv6 one by its /64. A home line
    or a server is given a whole /64 (2^64 addresses), so counting each address alone let one
    client take a fresh address for every request and never meet a limit. An IPv4 address mapped
    into IPv6 (::ffff:a.b.c.d, a dual-stack socket) is that IPv4 address."""
    address = get_remote_address()
    if ":" not in address:  # IPv4 (or a test client's name): itself, without parsing on the hot path
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return address


limiter = Limiter(key_func=client_key, default_limits=[], headers_enabled=False)
# A connection to Redis that failed or was closed under us: `limits` then counts the request itself.
REDIS_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError)
log = logging.getLogger(__name__)


class StorageOutage:
    """The limits' storage (Redis) unreachable. Meanwhile each process counts the API's limits in
    its own memory, as Flask-Limiter's in-memory fallback counts the pages' (create_app turns it
    on): a donor can still give and a sign-in is still limited, per process, where every request
    would otherwise fail. Redis is tried again after 1, 2, 4 ... 60 s; the first success ends it."""

    MAX_BACKOFF = 60.0

    def __init__(self) -> None:
        self.retry_at = 0.0  # monotonic seconds; 0 while Redis answers
        self.backoff = 0.0
        self._memory: FixedWindowRateLimiter | None = None  # made at the first outage (its storage starts a thread)
        self._lock = threading.Lock()

    @property
    def memory(self) -> FixedWindowRateLimiter:
        if self._memory is None:
            with self._lock:
                if self._memory is None:
                    self._memory = FixedWindowRateLimiter(MemoryStorage())
        return self._memory

    def ongoing(self) -> bool:
        return bool(self.retry_at) and time.monotonic() < self.retry_at

    def began(self, error: BaseException) -> None:
        with self._lock:
            self.backoff = min(self.MAX_BACKOFF, self.backoff * 2 or 1.0)
            self.retry_at = time.monotonic() + self.backoff
        log.warning("rate-limit storage unreachable (%s): limits counted in this process's memory; "
                    "Redis tried again in %.0f s", error, self.backoff)

    def ended(self) -> None:
        if self.backoff:
            with self._lock:
                self.backoff = self.retry_at = 0.0
            log.warning("rate-limit storage reachable again: limits counted in Redis")

    def reset(self) -> None:
        """Redis trusted again and the memory's counts forgotten (beside `limiter.reset()`)."""
        with self._lock:
            self.backoff = self.retry_at = 0.0
            if self._memory is not None:
                self._memory.storage.reset()

    def fall_back(self, error: BaseException, items: list[RateLimitItem], key: str,
                  scope: str) -> Callable[[], None]:
        """Redis failed with `error`: the outage begins (or goes on), and `items` are counted in
        memory instead."""
        self.began(error)
        return self.count(items, key, scope)

    def count(self, items: list[RateLimitItem], key: str, scope: str) -> Callable[[], None]:
        """Counted in this process's memory: the answer, as PerClientLimit.send gives it."""
        for item in items:
            if not self.memory.hit(item, key, scope):
                return partial(_refuse, self.memory, item, key, scope)
        return go_on


storage_outage = StorageOutage()


def seconds_until(reset_at: float) -> int:
    """Retry-After for a spent limit whose window ends at `reset_at` (epoch seconds): whole
    seconds, rounded up, at least 1 (RFC 9110)."""
    return max(1, math.ceil(reset_at - time.time()))


class PerClientLimit:
    """An API route's limit (`api.route(limit=...)`): counted per client address and route in the
    limiter's own storage, with its own strategy (`limits`, which Flask-Limiter drives too), so
    `RATELIMIT_ENABLED`, `RATELIMIT_STORAGE_URI` and `limiter.reset()` govern it alike.

    Why not Flask-Limiter's decorator: on every call it resolves the route's limits, their
    exemptions and meta limits into a per-request context: 0.38 ms of a pledge's 3.5 ms of CPU
    (A/B in one process), on top of the storage's own round trip. An API limit has none of those:
    one `hit` per limit is all it needs. Pages keep the decorator (methods,
    per-account keys, exemptions)."""

    def __init__(self, limit: str, scope: str) -> None:
        self.items: list[RateLimitItem] = parse_many(limit)
        self.scope = scope

    def send(self) -> Callable[[], None]:
        """Count this request now, and return what says whether it may go on: called, it raises
        TooManyRequests (429, with Retry-After) once a limit is spent. It must be called.

        On Redis with fixed windows (the production settings), the count is sent here and its
        answer read when called, so the caller validates the request while Redis answers: a round
        trip waited for costs the web process a fifth of a pledge's CPU, in blocking and waking
        (the README's hot path). Elsewhere the count is made here, as `limits` makes it."""
        if not limiter.enabled:
            return go_on
        strategy, key = limiter.limiter, client_key()
        if storage_outage.ongoing():
            return storage_outage.count(self.items, key, self.scope)
        if len(self.items) == 1:
            sent = _sent_fixed_window(strategy, self.items[0], key, self.scope)
            if sent is not None:
                return sent
        try:
            for n, item in enumerate(self.items):
                if not strategy.hit(item, key, self.scope):
                    return partial(_refuse, strategy, item, key, self.scope)
        except REDIS_CONNECTION_ERRORS as error:
            return storage_outage.fall_back(error, self.items[n:], key, self.scope)
        storage_outage.ended()
        return go_on


def go_on() -> None:
    """A limit's answer that lets the request go on."""


def _refuse(strategy, item: RateLimitItem, key: str, scope: str) -> None:
    try:
        retry_after = seconds_until(strategy.get_window_stats(item, key, scope).reset_time)
    except REDIS_CONNECTION_ERRORS:  # gone since it counted: at most the whole window
        retry_after = item.get_expiry()
    raise TooManyRequests(retry_after=retry_after)


def _sent_fixed_window(strategy, item: RateLimitItem, key: str, scope: str) -> Callable[[], None] | None:
    """`limits`' own fixed-window count on Redis (its INCR-and-EXPIRE script, under its own key,
    so `limiter.reset()` and the pages' limits see the same counters), sent on a connection of the
    storage's pool; None where that is not the strategy and storage. Whatever goes wrong on the
    connection falls back to `limits`' own call (which loads the script and retries): at worst
    the request is counted twice, never not at all."""
    storage = strategy.storage
    if type(strategy) is not FixedWindowRateLimiter or type(storage) is not RedisStorage:
        return None
    limit_key, expiry = item.key_for(key, scope), item.get_expiry()
    connections = _limit_connections.of(storage.get_connection().connection_pool)
    try:
        conn = connections.take()
    except REDIS_CONNECTION_ERRORS as error:  # Redis down (a connection is made here)
        return storage_outage.fall_back(error, [item], key, scope)
    try:
        conn.send_command("EVALSHA", storage.lua_incr_expire.sha, 1, storage.prefixed_key(limit_key), expiry, 1)
    except REDIS_CONNECTION_ERRORS:
        conn.disconnect()
        return partial(_counted_by_limits, strategy, item, key, scope)

    def settle() -> None:
        try:
            count = int(conn.read_response())
        except BaseException as error:
            conn.disconnect()  # nothing half read may reach another command: this connection is dropped
            if isinstance(error, (NoScriptError, *REDIS_CONNECTION_ERRORS)):  # a restarted Redis: no script, a closed socket
                return _counted_by_limits(strategy, item, key, scope)
            raise
        connections.give_back(conn)
        storage_outage.ended()
        if count > item.amount:
            _refuse(strategy, item, key, scope)

    return settle


class _LimitConnections:
    """The API limits' own Redis connections, made with the limits' pool's settings: one per thread
    counting at once. A connection comes back here only once its answer is read whole, and is
    dropped on any error, so it is always ready for the next command; redis-py's pool, which
    cannot know that, checks every connection it hands out by reading its socket without waiting
    (three system calls and a hand-over of the interpreter) and records its metrics: a tenth of a
    pledge's Redis work. list.pop and list.append are atomic: no lock."""

    def __init__(self, pool) -> None:
        self.connection_class, self.connection_kwargs = pool.connection_class, pool.connection_kwargs
        self.idle: list = []

    def take(self):
        try:
            return self.idle.pop()
        except IndexError:
            conn = self.connection_class(**self.connection_kwargs)
            conn.connect()
            return conn

    def give_back(self, conn) -> None:
        self.idle.append(conn)


class _LimitConnectionSets:
    """One _LimitConnections per pool (an app bound to another Redis gets its own), gone with its
    pool (its connections closed as they are collected), and forgotten in a forked child: a socket
    opened before the fork belongs to the parent."""

    def __init__(self) -> None:
        self.sets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        os.register_at_fork(after_in_child=self.sets.clear)

    def of(self, pool) -> _LimitConnections:
        found = self.sets.get(pool)
        if found is None:
            found = self.sets[pool] = _LimitConnections(pool)
        return found


_limit_connections = _LimitConnectionSets()


def _counted_by_limits(strategy, item: RateLimitItem, key: str, scope: str) -> None:
    """`limits`' own count (it loads the script again, on a new connection); Redis still
    unreachable, this process's memory counts it."""
    try:
        allowed = strategy.hit(item, key, scope)
    except REDIS_CONNECTION_ERRORS as error:
        return storage_outage.fall_back(error, [item], key, scope)()
    storage_outage.ended()
    if not allowed:
        _refuse(strategy, item, key, scope)


def route_limits_only(app) -> None:
    """Every limit here is a route's own (a decorator, checked by the route's wrapper).
    Flask-Limiter also checks every request before it starts, for default, application, meta and
    blueprint limits; there are none, and that check costs about 0.1 ms of each request for
    nothing, the hot path's included. It is taken out; were any such limit ever declared, the check
    stays (and applies it). Its hook after each request (the X-RateLimit-* headers, and the
    deductions of limits counted by their answer, `deduct_when`) goes too while neither is used:
    about 1% of a pledge's CPU. Called at the end of create_app, once every blueprint is declared."""
    manager = limiter.limit_manager
    if manager.application_limits or manager.default_limits or manager._blueprint_limits or limiter._meta_limits:
        return
    hooks = app.before_request_funcs.get(None, [])
    if limiter._check_request_limit in hooks:  # absent when RATELIMIT_ENABLED is off
        hooks.remove(limiter._check_request_limit)
    if not answers_after(limiter):
        after = app.after_request_funcs.get(None, [])
        after[:] = [f for f in after if not _limiter_after_hook(f, limiter)]


def answers_after(limiter: Limiter) -> bool:
    """Whether the limiter has work once the view has answered: headers to add, or a route limit
    counted only for some answers (`deduct_when`)."""
    decorated = limiter.limit_manager._decorated_limits.values()
    return bool(limiter._headers_enabled or any(limit.deduct_when for limits in decorated for limit in limits))


def _limiter_after_hook(hook, limiter: Limiter) -> bool:
    """Flask-Limiter's own after-request hook (a partial over the Limiter: see Limiter.init_app)."""
    return isinstance(hook, partial) and hook.args == (limiter,)


@contextmanager
def one_statement() -> Iterator[sa.Connection]:
    """The connection for a use case that is exactly one SQL statement (atomic by itself).

    Outside a transaction it runs in autocommit: PostgreSQL gets the statement alone, not BEGIN,
    the statement and COMMIT (one round trip instead of three, on the hot paths). Inside a
    transaction (a caller's unit of work, a test) it joins that transaction."""
    session = db.session()
    if session.in_transaction():
        yield session.connection()
        return
    engine = db.engine
    if engine.dialect.name == "sqlite":  # one file, one writer: the session's own connection, for this statement
        conn = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        try:
            yield conn
        finally:
            session.commit()  # nothing left to commit: hands the connection back to the pool
        return
    with _autocommit_engine(engine).connect() as conn:
        yield conn


def one_statement_value(statement: sa.Executable, params: dict[str, Any]) -> Any:
    """The first column of the first row (None if no row) of a use case that is exactly one SQL
    statement, run as `one_statement` runs it: the hot paths' single writes (a test-mode pledge,
    a webhook's event).

    On PostgreSQL outside a transaction the driver runs it itself, on a pooled autocommit
    connection: its SQL compiled once by SQLAlchemy, its parameters converted by their own types
    (enums, UTC times) as SQLAlchemy converts them, its errors raised as SQLAlchemy's, and a
    connection the error broke taken out of the pool. SQLAlchemy's work around one execution (its
    context, cache lookup and result) costs more than the driver's: 0.16 against 0.10 ms of CPU a
    statement, 0.06 ms of a pledge's 1.4 in the web process. The value is as the driver reads it,
    with no type's conversion: for an id or a count, not for a column whose type converts results.
    No session is made for it (10 µs with its close) when the request has none yet."""
    engine = db.engine
    if (db.session.registry.has() and db.session().in_transaction()) or engine.dialect.name != "postgresql":
        with one_statement() as conn:
            return conn.execute(statement, params).scalar()
    form = _driver_form(statement, engine.dialect)
    sql, convert = form.compiled.string, form.convert
    # Every parameter the SQL names (the caller's and the statement's own literals), by its name
    # there; a missing one is SQLAlchemy's error, as on an execution.
    try:
        values = {name: (convert[name](value) if name in convert else value)
                  for name, value in form.compiled.construct_params(params).items()}
    except (TypeError, ValueError, LookupError) as err:  # a type refusing a value (an enum's unknown name)
        raise sa.exc.StatementError(str(err), sql, params, err) from err
    raw = _autocommit_engine(engine).raw_connection()
    try:
        cursor = raw.cursor()
        try:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error as err:
        broken = engine.dialect.is_disconnect(err, raw.dbapi_connection, None)
        if broken:
            raw.invalidate(err)
        raise sa.exc.DBAPIError.instance(sql, params, err, engine.dialect.loaded_dbapi.Error,
                                         connection_invalidated=broken, dialect=engine.dialect) from err
    finally:
        raw.close()
    return None if row is None else row[0]


class _DriverForm(NamedTuple):
    statement: sa.Executable  # kept: its id is the key, and an id is only unique while it lives
    compiled: sa.engine.Compiled
    convert: dict[str, Callable[[Any], Any]]  # the parameters' type conversions, by their names in the SQL


# By statement and dialect class: the SQL's parameter style and the types' processors are the
# driver's (psycopg's and psycopg2's differ), not only the database kind's.
_DRIVER_FORMS: dict[tuple[int, type], _DriverForm] = {}


def _driver_form(statement: sa.Executable, dialect: sa.Dialect) -> _DriverForm:
    key = (id(statement), type(dialect))
    form = _DRIVER_FORMS.get(key)
    if form is None or form.statement is not statement:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding or bind.literal_execute for bind in compiled.binds.values()):
            raise ValueError("one_statement_value takes no expanding (IN) or literal-execute parameters")
        convert = {}
        for name, bind in compiled.binds.items():
            # What SQLAlchemy's execution does with each parameter (its type's processor for this dialect).
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                convert[compiled.escaped_bind_names.get(name, name)] = processor
        form = _DRIVER_FORMS[key] = _DriverForm(statement, compiled, convert)
    return form


# engine id and process -> (that engine's URL, its autocommit twin)
_autocommit: dict[tuple[int, int], tuple[sa.URL, sa.Engine]] = {}
_autocommit_made = threading.Lock()


def _autocommit_engine(engine: sa.Engine) -> sa.Engine:
    """A pool of connections that stay in autocommit, beside the app's own (same URL and sizes).
    Switching a pooled connection to autocommit and back costs more than the round trips it saves,
    so these never switch. Disposed with the app's engine (tests, the fork in `filmfund run`).
    Found by the engine's id and checked by its URL object (an id can be reused by a later engine;
    the URL is compared by identity: writing it out as text was 1% of a webhook's CPU)."""
    key = (os.getpid(), id(engine))
    twin = _made_for(engine, key)
    if twin is not None:
        return twin
    with _autocommit_made:  # once: two threads' first statements would each make a pool, one left open
        return _made_for(engine, key) or _make_autocommit_engine(engine, key)


def _made_for(engine: sa.Engine, key: tuple[int, int]) -> sa.Engine | None:
    found = _autocommit.get(key)
    return found[1] if found is not None and found[0] is engine.url else None


def _make_autocommit_engine(engine: sa.Engine, key: tuple[int, int]) -> sa.Engine:
    options = {k: v for k, v in current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).items()
               if k in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle")}
    twin = sa.create_engine(engine.url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **options)
    _autocommit[key] = (engine.url, twin)
    return twin


@sa.event.listens_for(sa.engine.Engine, "engine_disposed")
def _dispose_autocommit_twin(engine: sa.Engine) -> None:
    """An engine disposed takes its twin with it. One listener for every engine, not one added to
    an engine each time it gets a twin: an engine disposed and used again (a forked process's,
    a test's) would gather them. In a forked child, the parent's twin is let go without closing
    its connections (they are the parent's)."""
    for key in [key for key in list(_autocommit) if key[1] == id(engine)]:
        gone = _autocommit.pop(key, None)
        if gone is not None:
            gone[1].dispose(close=key[0] == os.getpid())
