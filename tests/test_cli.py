"""The command line lists its commands without building the app, and builds it once for a
command that needs it (issue 17, item 1). Behaviour, not timing: bench/cli_startup.py times it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import filmfund
from filmfund import cli
from tests.media.conftest import moto_server  # noqa: F401  (a session fixture: S3 on loopback)

ROOT = Path(__file__).resolve().parent.parent

# Runs `filmfund ARGS` in a fresh interpreter with create_app counted, and reports what it loaded.
PROBE = """
import json, sys
import filmfund
builds = []
real = filmfund.create_app
def counting(*a, **k):
    builds.append(1)
    return real(*a, **k)
filmfund.create_app = counting
from filmfund.cli import main
try:
    main(sys.argv[1:], prog_name="filmfund")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "builds": len(builds), "flask": "flask" in sys.modules,
                  "sqlalchemy": "sqlalchemy" in sys.modules, "psycopg": "psycopg" in sys.modules,
                  "components": sorted(m for m in sys.modules if m.endswith((".models", ".services")))}),
      file=sys.stderr)
"""


def _run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    env.update(PYTHONPATH=str(ROOT), FILMFUND_INSTANCE_DIR=str(tmp_path / "instance"))
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    return json.loads(out.stderr.strip().splitlines()[-1]), out.stdout + out.stderr


def test_help_builds_no_app_and_imports_no_component(tmp_path):
    seen, output = _run(tmp_path, "--help")
    assert seen == {"code": 0, "builds": 0, "flask": False, "sqlalchemy": False, "psycopg": False,
                    "components": []}, output
    for name in ("media", "worker", "users", "db", "credits"):
        assert f"  {name} " in output


def test_a_group_help_and_nothing_to_ingest_build_no_app(tmp_path):
    seen, output = _run(tmp_path, "media", "--help")
    assert (seen["code"], seen["builds"], seen["flask"]) == (0, 0, False), output
    empty = tmp_path / "card"
    empty.mkdir()
    seen, output = _run(tmp_path, "media", "ingest", str(empty))
    # Nor SQLAlchemy (a fifth of a second): the command line's own error handling imports it only
    # when a command did.
    assert (seen["code"], seen["builds"], seen["flask"], seen["sqlalchemy"]) == (0, 0, False, False), output
    assert "nothing to ingest" in output
    seen, output = _run(tmp_path, "media", "verify")  # a usage error is told before any app
    assert (seen["code"], seen["builds"]) == (2, 0), output


def test_a_command_that_needs_the_app_builds_it_once(tmp_path):
    seen, output = _run(tmp_path, "db", "upgrade")
    assert (seen["code"], seen["builds"]) == (0, 1), output
    seen, output = _run(tmp_path, "media", "verify", "--all")
    assert (seen["code"], seen["builds"]) == (0, 1), output
    assert "0 asset(s) checked" in output
    seen, output = _run(tmp_path, "users", "list")  # flask.cli's with_appcontext: the same app
    assert (seen["code"], seen["builds"]) == (0, 1), output


def test_a_sqlite_instance_does_not_load_psycopg_and_can_still_import_it(tmp_path):
    """huey is imported with psycopg hidden (filmfund/jobs.py: 85 ms of each start); the driver
    stays importable for whoever needs it next (SQLAlchemy, on a PostgreSQL database)."""
    _run(tmp_path, "db", "upgrade")
    seen, output = _run(tmp_path, "media", "verify", "--all")
    assert (seen["code"], seen["builds"], seen["psycopg"]) == (0, 1, False), output
    out = subprocess.run([sys.executable, "-c", "import filmfund.jobs, psycopg, sys; print(sys.modules['psycopg'].__name__)"],
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "psycopg", out.stderr


def test_the_table_says_what_the_commands_say(monkeypatch, tmp_path):
    """The help listed without importing is each command's own, and every command the app
    registers is in the table (a new one missing from it would be runnable but not listed)."""
    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(tmp_path / "instance"))
    app = filmfund.create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'db.sqlite'}"})
    registered = set(app.cli.list_commands(click.Context(app.cli)))
    lazy = set(cli.LAZY_COMMANDS)
    assert registered <= lazy, registered - lazy
    ctx = click.Context(cli.main, obj=None)
    ctx.meta[cli.APP_FACTORY] = lambda: app
    for name, (where, help_text) in cli.LAZY_COMMANDS.items():
        command = cli.main.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(200) == click.Command(name, help=help_text).get_short_help_str(200), name
    assert set(cli.main.list_commands(ctx)) == lazy | {"run", "worker"}


def test_credits_has_the_fulfil_commands_without_the_app():
    ctx = click.Context(cli.main)
    credits = cli.main.get_command(ctx, "credits")
    assert {"export", "freeze", "render"} <= set(credits.list_commands(ctx))
    result = CliRunner().invoke(cli.main, ["credits", "--help"])
    assert result.exit_code == 0 and "render" in result.output


@pytest.mark.parametrize("args", [["nope"], ["media", "nope"]])
def test_unknown_commands_are_usage_errors(args):
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2


def _bare(cwd: Path, *args: str, instance: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    env["PYTHONPATH"] = str(ROOT)
    if instance is not None:
        env["FILMFUND_INSTANCE_DIR"] = str(instance)
    return subprocess.run([sys.executable, "-m", "filmfund.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_outside_the_project_folder_a_command_says_what_to_do_and_makes_nothing(tmp_path):
    """Run from a folder with no instance/ and no FILMFUND_INSTANCE_DIR: one line naming the
    setting and `filmfund db upgrade`, exit 1, and no stray instance/ (nor its new secret key)."""
    for args in (["users", "list"], ["ledger", "check"], ["run", "--port", "0"]):
        out = _bare(tmp_path, *args)
        assert out.returncode == 1, out.stdout + out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "FILMFUND_INSTANCE_DIR" in lines[0] and "filmfund db upgrade" in lines[0], lines
        assert "Traceback" not in out.stderr and list(tmp_path.iterdir()) == []
    assert _bare(tmp_path, "users", "--help").returncode == 0 and list(tmp_path.iterdir()) == []


def test_a_database_without_tables_is_told_in_one_line(tmp_path):
    """An instance folder chosen on purpose but never migrated: not "no such table: users", but
    which database it is and the command that makes its tables."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _bare(tmp_path, "users", "list", instance=empty)
    assert out.returncode == 1
    [line] = out.stderr.strip().splitlines()
    assert "has no tables yet" in line and "filmfund db upgrade" in line and str(empty) in line
    assert "no such table" not in line and "Traceback" not in out.stderr


def test_what_the_app_build_makes_is_frozen_and_collection_goes_on():
    """kept_for_life pauses the cyclic collector while the app is built and freezes what it made;
    the collector must run again afterwards, whether the build succeeded or failed."""
    import gc

    from filmfund import cli

    def failing_build():
        raise RuntimeError("no campaign file")

    assert gc.isenabled()
    before = gc.get_freeze_count()
    try:
        kept = cli.kept_for_life(lambda: [[n] for n in range(5000)])
        assert gc.isenabled() and gc.get_freeze_count() >= before + len(kept)
        with pytest.raises(RuntimeError):
            cli.kept_for_life(failing_build)
        assert gc.isenabled()
    finally:
        gc.unfreeze()


SECRET = "s3cr3t"  # a password in a URL setting: never in what the command says


@pytest.mark.parametrize("env,value,said", [
    ("FILMFUND_MEDIA_MAX_ATTEMPTS", "three", "FILMFUND_MEDIA_MAX_ATTEMPTS must be a whole number"),
    ("FILMFUND_TOKEN_TTL_DAYS", "-1", "FILMFUND_TOKEN_TTL_DAYS must be a whole number"),
    ("FILMFUND_LANGUAGES", "fr", "FILMFUND_LANGUAGES: 'fr'"),
    ("FILMFUND_QUEUE_URL", "localhost:6379", "FILMFUND_QUEUE_URL: unsupported scheme"),  # checked in jobs.py
    ("FILMFUND_DATABASE_URL", f"postgres://filmfund:{SECRET}@127.0.0.1/filmfund", "FILMFUND_DATABASE_URL: 'postgres'"),
    ("FILMFUND_RATELIMIT_STORAGE_URL", "redis//127.0.0.1", "FILMFUND_RATELIMIT_STORAGE_URL is not a URL"),
    ("FILMFUND_RATELIMIT_STORAGE_URL", f"nosuch://limits:{SECRET}@127.0.0.1",  # the limits library's refusal
     "FILMFUND_RATELIMIT_STORAGE_URL: unknown storage scheme"),
    # Nothing listens on port 1: the database is unreachable.
    ("FILMFUND_DATABASE_URL", f"postgresql+psycopg://filmfund:{SECRET}@127.0.0.1:1/filmfund",
     "cannot connect to 127.0.0.1:1/filmfund (FILMFUND_DATABASE_URL): connection failed"),
])
def test_a_wrong_setting_is_told_in_one_line_naming_it(tmp_path, env, value, said):
    """An operator's typo in a setting used to end in a Python traceback (a bare int() naming no
    setting, SQLAlchemy's or the limits library's own errors, a password in the URL printed)."""
    out = subprocess.run([sys.executable, "-m", "filmfund.cli", "users", "list"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**_bare_env(tmp_path / "instance"), env: value})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"Error: {said}"), line
    assert SECRET not in out.stderr


def _bare_env(instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    return {**env, "PYTHONPATH": str(ROOT), "FILMFUND_INSTANCE_DIR": str(instance)}


def _postgresql(**parts: str) -> str:
    """The tests' PostgreSQL server (127.0.0.1:5432) with another database or user."""
    from sqlalchemy.engine import make_url

    from tests.conftest import PG_ADMIN_URL

    return make_url(PG_ADMIN_URL).set(**parts).render_as_string(hide_password=False)


@pytest.mark.parametrize("parts,name", [({"database": "filmfund_no_such_database"}, "filmfund_no_such_database"),
                                        ({"username": "filmfund_no_such_role"}, "filmfund_no_such_role")])
@pytest.mark.parametrize("args", [("users", "list"), ("db", "upgrade")])
def test_a_missing_postgresql_database_or_role_is_a_connection_failure_not_missing_tables(tmp_path, parts, name,
                                                                                          args):
    """PostgreSQL's 'database "x" does not exist' (or role) used to be told as "has no tables yet:
    run `filmfund db upgrade`", which cannot make a database or a role."""
    url = _postgresql(**parts)
    out = subprocess.run([sys.executable, "-m", "filmfund.cli", *args], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={**_bare_env(tmp_path / "instance"), "FILMFUND_DATABASE_URL": url})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith(f"Error: cannot connect to {cli._where(url)} (FILMFUND_DATABASE_URL): "), line
    assert f'"{name}" does not exist' in line and "has no tables yet" not in line


def test_only_a_missing_table_is_told_as_missing_tables(tmp_path, monkeypatch):
    """_no_schema answers PostgreSQL's missing relation, not its missing database."""
    import sqlalchemy as sa

    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(tmp_path))
    engine = sa.create_engine(_postgresql())
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as no_table:
            conn.execute(sa.text("SELECT * FROM filmfund_no_such_table"))
        with pytest.raises(sa.exc.OperationalError) as no_database:
            sa.create_engine(_postgresql(database="filmfund_no_such_database")).connect()
    finally:
        engine.dispose()
    assert "has no tables yet" in cli._no_schema(no_table.value) and cli._cannot_connect(no_table.value) is None
    assert cli._no_schema(no_database.value) is None
    assert "filmfund_no_such_database" in cli._cannot_connect(no_database.value)


def test_media_ingest_to_a_storage_that_fails_says_so_in_one_line(tmp_path, moto_server):  # noqa: F811
    """A use case's refusal (StorageUnavailable: here a bucket that does not exist) is said as its
    message, exit 1, not as a traceback."""
    instance = tmp_path / "instance"
    assert _bare(tmp_path, "db", "upgrade", instance=instance).returncode == 0
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=duration=1:size=160x120:rate=10", "-pix_fmt", "yuv420p", str(clip)], check=True)
    out = subprocess.run([sys.executable, "-m", "filmfund.cli", "media", "ingest", str(clip)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120,
                         env={**_bare_env(instance), "FILMFUND_STORAGE_URL": "s3://filmfund-no-such-bucket/media",
                              "FILMFUND_S3_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                              "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1].startswith("Error: The footage storage")
