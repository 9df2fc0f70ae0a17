"""Fixtures: an app per database (SQLite and PostgreSQL), a client, a CLI runner, factories.

Every test that touches the database runs on both SQLite and PostgreSQL. PostgreSQL is the
machine's own (127.0.0.1:5432): when it cannot be reached the tests fail, never skip.
The schema is created once per database and session; each test starts from empty tables.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund import create_app
from filmfund.extensions import db as _db
from filmfund.extensions import limiter, storage_outage

PG_ADMIN_URL = os.environ.get("FILMFUND_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
DATABASES = [d.strip() for d in os.environ.get("FILMFUND_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]


def _reuse_url_builders() -> None:
    """Each test builds its own app, and werkzeug compiles every route's URL builder from
    generated Python source as the app is built: two per route, some 340 an app, 60-90 ms of
    each test's setup. A builder depends only on its rule's parts and defaults (the rule object
    is passed in when it builds a URL), so the suite compiles each one once. The app a user runs
    is built once per process and is untouched by this."""
    from werkzeug.routing.rules import Rule

    compile_builder = Rule._compile_builder
    compiled: dict = {}

    def _compile_builder(self, append_unknown: bool = True):
        defaults = self.defaults or {}
        key = (self.rule, tuple(self._trace), append_unknown,
               tuple((k, type(self._converters.get(k)), repr(v)) for k, v in defaults.items()))
        if key not in compiled:
            compiled[key] = compile_builder(self, append_unknown)
        return compiled[key]

    Rule._compile_builder = _compile_builder


_reuse_url_builders()


class _CompiledTemplates:
    """Each test builds its own app, and each app's Jinja environment compiled every template it
    rendered from its source again: a fifth of a page test's time (192 compiles, 8.5 s of the
    dashboard's and account pages' 43 s). The tests' apps share one cache of compiled templates
    (Jinja's own bytecode cache: a template's code is kept under its name and its source's
    checksum, so an edited template is compiled again). Every app is built with the same Jinja
    settings; the app a user runs compiles each template once per process, as before."""

    def __init__(self) -> None:
        from jinja2 import BytecodeCache

        class _Kept(BytecodeCache):
            def __init__(self) -> None:
                self.codes: dict[str, bytes] = {}

            def load_bytecode(self, bucket) -> None:
                code = self.codes.get(bucket.key)
                if code is not None:
                    bucket.bytecode_from_string(code)

            def dump_bytecode(self, bucket) -> None:
                self.codes[bucket.key] = bucket.bytecode_to_string()

        self.cache = _Kept()

    def share_with(self, app) -> None:
        app.jinja_env.bytecode_cache = self.cache


_compiled_templates = _CompiledTemplates()


def _cheapest_password_hashes() -> None:
    """argon2 at its cheapest cost in the test process: the same library, algorithm and code paths
    (hash, verify, the unknown address's equal work, a rehash when the cost differs), where
    production's cost (64 MiB, 3 passes: 0.11 s a hash here) was paid hundreds of times: the
    sign-in and staff tests took 21 s on one database, 8 s with this. The served apps of the browser
    and operations tests (subprocesses) keep production's cost."""
    from argon2 import PasswordHasher, profiles

    from filmfund.auth import services

    services._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)


_cheapest_password_hashes()


@pytest.fixture(scope="session")
def pg_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"filmfund_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            # A throwaway database need not wait for the disk at each commit (every test commits
            # dozens of times): nothing a test sees changes, only what a crash of the machine
            # itself would keep. Every connection to it, the served apps' and workers' included.
            conn.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    except sa.exc.OperationalError as exc:  # fail loudly: CI must not silently skip PostgreSQL
        pytest.fail(f"PostgreSQL is required for the test suite and is unreachable at {PG_ADMIN_URL}: {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
            {"n": name})
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory):
    """Our own redis-server for this session (a free loopback port, nothing written to disk): no
    test touches the machine's Redis. Tests that use it empty it first (it is theirs alone)."""
    from tests.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'filmfund.db'}"


_schema_ready: set[str] = set()


def pytest_collection_modifyitems(config, items):
    """A test marked `one_database` runs on PostgreSQL alone (on the first database of
    FILMFUND_TEST_DATABASES when PostgreSQL is not among them): its subject is not the database but
    what ffmpeg makes of a clip, or the HTTP contract, and the same encodes on a second database
    cost the suite minutes and test nothing more. What those tests store (jobs, assets, their
    states) is tested on both databases by the tests of those rules (tests/media/test_jobs.py ...)."""
    one = "postgresql" if "postgresql" in DATABASES else DATABASES[0]
    kept, dropped = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("database_url")
        (dropped if param not in (None, one) and item.get_closest_marker("one_database") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    _longest_first(items)


def _longest_first(items) -> None:
    """Files that start a server, a browser or ffmpeg (seconds each, 15 to 70 for a browser file,
    whatever their number of tests) first, then the others by their number of tests, most first,
    each file's tests kept together and in their order: two workers given the longest work first
    end together (the Makefile turns xdist's own order off for this one)."""
    counts: dict = {}
    heavy: set = set()
    for item in items:
        counts[item.path] = counts.get(item.path, 0) + 1
        if (item.get_closest_marker("browser") or item.get_closest_marker("slow")
                or item.get_closest_marker("one_database") or "ops" in item.path.parent.parts):
            heavy.add(item.path)
    items.sort(key=lambda item: (item.path not in heavy, 0 if item.path in heavy else -counts[item.path]))


@pytest.fixture(params=DATABASES)
def database_url(request):
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture
def instance_dir(tmp_path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def app_overrides() -> dict:
    """Tests override this fixture (or extend it) to tune settings."""
    return {}


@pytest.fixture
def app(database_url, instance_dir, app_overrides, monkeypatch):
    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(instance_dir))
    for var in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE", "FILMFUND_SMTP_URL",
                "FILMFUND_STORAGE_URL", "FILMFUND_QUEUE_URL", "FILMFUND_DATABASE_URL", "FILMFUND_CAMPAIGN_FILE"):
        monkeypatch.delenv(var, raising=False)
    # Webhooks are stored and answered, then booked by a worker from the queue, as in production:
    # tests run it with tests.worker.run_worker (the queue is SQLite in this test's instance folder).
    overrides = {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url}
    overrides.update(app_overrides)
    app = create_app(overrides)
    _compiled_templates.share_with(app)
    app.before_request(_forget_request_caches)
    shared, listening = _keep_engine(app)
    with app.app_context():
        if database_url not in _schema_ready:
            _db.drop_all()
            _db.create_all()
            _schema_ready.add(database_url)
        _empty_tables()
        limiter.reset()
        storage_outage.reset()
        yield app
        _db.session.remove()
        _db.engine.dispose()
        if shared is not None and _listeners(_db.engine) != listening:  # a listener left on it: not for the next test
            _engines.pop(shared, None)


# (URL, engine settings) -> the engine the tests of this process share
_engines: dict[tuple[str, str, bool], sa.Engine] = {}


def _keep_engine(app) -> tuple[tuple[str, str, bool] | None, dict[str, int]]:
    """The app's engine is the one the earlier tests of this process used with the same database
    and engine settings (disposed after each: no connection is kept between tests). An engine
    keeps the SQL it compiled; a new one per test compiled every statement again, about a sixth
    of a database test's time. The app a user runs makes one engine per process, as before.
    Returns the key it is shared under (None: not shared, the app has other binds) and its
    listeners as they stand, so that a test that leaves one is found (and a test that changes the
    app's settings meanwhile still lets go of the right one)."""
    engines = _db._app_engines[app]
    if set(engines) != {None}:
        return None, {}
    key = (str(app.config["SQLALCHEMY_DATABASE_URI"]), repr(app.config["SQLALCHEMY_ENGINE_OPTIONS"]),
           bool(app.config["SQLALCHEMY_ECHO"]))
    kept = _engines.setdefault(key, engines[None])
    if kept is not engines[None]:
        engines[None].dispose()
        engines[None] = kept
    return key, _listeners(kept)


def _listeners(engine: sa.Engine) -> dict[str, int]:
    return ({name: len(getattr(engine.dispatch, name)) for name in engine.dispatch._event_names}
            | {f"pool.{name}": len(getattr(engine.pool.dispatch, name)) for name in engine.pool.dispatch._event_names})


def _forget_request_caches() -> None:
    """The test's app context outlives requests and Flask reuses it for each test request, so
    Flask-Login's cached user and Flask-WTF's cached CSRF token (both kept in `g`) would leak
    from one request to the next. In production each request has its own app context."""
    from flask import g

    g.pop("_login_user", None)
    g.pop("csrf_token", None)


def _empty_tables() -> None:
    """Empty every table, the append-only audit log included (its triggers are set aside for it)."""
    from filmfund.audit import SQLITE_TRIGGERS

    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Only what the last test wrote, by DELETE: a TRUNCATE of every table makes new files
            # for each table and index, 0.35-0.45 s a test, where this takes 0.02 s. The replica
            # role sets the foreign keys and the audit log's triggers aside, as TRUNCATE did.
            tables = _db.metadata.sorted_tables
            probe = " UNION ALL ".join(f'SELECT {i} WHERE EXISTS (SELECT 1 FROM "{t.name}")' for i, t in enumerate(tables))
            written = [tables[i].name for (i,) in conn.execute(sa.text(probe))] if tables else []
            counted = conn.execute(sa.text(
                "SELECT schemaname, sequencename FROM pg_sequences WHERE last_value IS NOT NULL")).all()
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for name in written:
                conn.execute(sa.text(f'DELETE FROM "{name}"'))
            for schema, sequence in counted:  # ids start at 1 again, as RESTART IDENTITY made them
                conn.execute(sa.text(f'ALTER SEQUENCE "{schema}"."{sequence}" RESTART'))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            for table in reversed(_db.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(sa.text(SQLITE_TRIGGERS[0]))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


_STAFF_HASH: list[str] = []


def _staff_hash() -> str:
    if not _STAFF_HASH:
        from filmfund.auth.services import _hasher

        _STAFF_HASH.append(_hasher.hash(STAFF_PASSWORD))
    return _STAFF_HASH[0]


STAFF_PASSWORD = "a-long-staff-password"


@pytest.fixture
def make_user(app):
    """Factory: make_user(email, role="donor", password=None) -> User."""
    from filmfund.auth import services

    def _make(email: str = None, role: str = "donor", password: str | None = None):
        email = email or f"user-{uuid.uuid4().hex[:8]}@example.org"
        user = services.ensure_user(email)
        if password:
            services.set_password(user, password)
        elif role in ("producer", "partner") and not user.password_hash:
            user.password_hash = _staff_hash()  # staff roles need a password (a fixed hash: no argon2 per test)
        services.grant_role(user, role)
        _db.session.commit()
        return user

    return _make


@pytest.fixture
def token_for(app):
    """Factory: token_for(user) -> {"Authorization": "Bearer ..."} headers."""
    from filmfund.auth import tokens

    def _token(user) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens.create_api_token(user.email)}"}

    return _token


@pytest.fixture
def login_as():
    """login_as(client, user): a signed-in session for page tests (the login form has its own tests)."""

    def _login(client, user):
        with client.session_transaction() as sess:
            sess["_user_id"] = user.get_id()
            sess["_fresh"] = True
        return client

    return _login


# What a campaign load writes into empty tables, per database and campaign file: [(table, rows)],
# parents first. Taken from the first load of the process into empty tables, given back to the others.
_loaded_campaigns: dict[tuple, list[tuple[sa.Table, list[dict]]]] = {}


def load_campaign_into_empty_tables() -> None:
    """Load the configured campaign into this test's (emptied) tables, committed, as
    `rewards.campaign.load_campaign` does: by that function itself until it has loaded into empty
    tables in this process; afterwards by writing back the rows it wrote then (39 rows in 6 tables), their times stamped
    with the moment of this load, the ids' sequences moved past them, the process's cached
    snapshots dropped. Most tests need a campaign, not a load: this takes 7 ms on SQLite and 14 on
    PostgreSQL where a load takes 31 and 53. The load itself is tested by the tests that call it."""
    from datetime import datetime

    from flask import current_app

    from filmfund.rewards import campaign as campaigns
    from filmfund.rewards import snapshot

    path = Path(current_app.config["CAMPAIGN_FILE"])
    key = (_db.engine.url.render_as_string(hide_password=False), str(path), path.stat().st_mtime_ns)
    written = _loaded_campaigns.get(key)
    if written is None:
        with _db.engine.connect() as conn:
            # A fixture may have written first (a producer, and the audit log's rows for it): the
            # tables then hold rows the load did not write, which a later test's fixtures write
            # again. Only a load into empty tables is kept to be given back.
            empty = not any(conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first()
                            for table in _db.metadata.sorted_tables)
        campaigns.load_campaign()
        _db.session.commit()
        if empty:
            with _db.engine.connect() as conn:
                written = [(table, [dict(row) for row in conn.execute(sa.select(table)).mappings()])
                           for table in _db.metadata.sorted_tables]
            _loaded_campaigns[key] = [(table, rows) for table, rows in written if rows]
        return
    now = campaigns.utcnow()
    with _db.engine.begin() as conn:
        for table, rows in written:
            conn.execute(table.insert(), [{k: now if isinstance(v, datetime) else v for k, v in row.items()}
                                          for row in rows])
            column = table.autoincrement_column
            if conn.dialect.name == "postgresql" and column is not None:
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                                     f'(SELECT max("{column.name}") FROM "{table.name}"))'))
    snapshot.forget()
    _db.session.expire_all()


@pytest.fixture
def campaign(app):
    """The bundled campaign, loaded into this test's database (its snapshot, as requests read it)."""
    from filmfund.rewards.campaign import current_campaign

    load_campaign_into_empty_tables()
    return current_campaign()


@pytest.fixture
def producer(make_user):
    return make_user("producer@filmfund.test", "producer")  # signed in by login_as (its password: STAFF_PASSWORD)


@pytest.fixture
def partner(make_user):
    return make_user("partner@xinxing.test", "partner")


@pytest.fixture
def booked_yesterday(monkeypatch):
    """Book what follows as the ledger would have a day ago: the partner sees the figures as they
    stood at the start of today in the campaign's zone (rewards/statements.py, the hold-back), so a
    test that looks as the partner books its money before that cutoff."""
    from datetime import datetime, timedelta, timezone

    from filmfund.rewards import ledger

    monkeypatch.setattr(ledger, "utcnow", lambda: datetime.now(timezone.utc) - timedelta(days=1, hours=1))


@pytest.fixture
def served_app(app):
    """This test's app served over real HTTP by waitress on a thread of the test process; yields its base URL."""
    import threading

    from waitress import wasyncore
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    stop = threading.Event()

    def serve() -> None:
        """waitress's loop (server.run), a poll at a time until told to stop; then every channel
        is closed here, on the loop's own thread, so that the loop never polls a descriptor
        closed under it."""
        while not stop.is_set() and server._map:
            wasyncore.loop(timeout=0.05, map=server._map, use_poll=server.adj.asyncore_use_poll, count=1)
        wasyncore.close_all(server._map)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"
    # Stop in waitress's order: the handler threads first (a handler that finishes pulls the
    # server's trigger), then the loop. Closing from this thread raced both ways (EBADF in a
    # handler, or in the loop) and failed a CI run; asking the loop to close through the
    # trigger failed another, its pipe closed already (EBADF in the pull): the loop is now told
    # by a flag it reads between polls.
    server.task_dispatcher.shutdown()
    stop.set()
    thread.join(10)
    assert not thread.is_alive(), "waitress's loop did not end"
