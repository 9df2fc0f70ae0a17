from pathlib import Path

import pytest

from filmfund.config import SettingError, load_settings


def test_secrets_generated_once_and_kept(tmp_path):
    env = {"FILMFUND_INSTANCE_DIR": str(tmp_path)}
    first = load_settings(env)
    second = load_settings(env)
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert first["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_embedded_defaults_live_in_the_instance_folder(tmp_path):
    s = load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path)})
    assert s["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'filmfund.db'}"
    assert s["STORAGE_URL"] == (tmp_path / "media").as_uri()
    assert s["QUEUE_URL"].startswith("sqlite:///") and str(tmp_path) in s["QUEUE_URL"]
    assert s["STRIPE_TEST_MODE"] is True and s["SMTP_URL"] is None


def test_environment_overrides(tmp_path):
    s = load_settings({
        "FILMFUND_INSTANCE_DIR": str(tmp_path),
        "FILMFUND_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1/db",
        "FILMFUND_SECRET_KEY": "operator-secret",
        "STRIPE_SECRET_KEY": "sk_test_123",
        "STRIPE_WEBHOOK_SECRET": "whsec_op",
        "FILMFUND_QUEUE_URL": "redis://127.0.0.1:6379/3",
    })
    assert s["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert s["SECRET_KEY"] == "operator-secret"
    assert s["STRIPE_TEST_MODE"] is False and s["STRIPE_WEBHOOK_SECRET"] == "whsec_op"
    assert not (tmp_path / "secret_key").exists()


def test_forwarded_for_is_ignored_unless_a_proxy_is_trusted(app):
    from flask import request

    @app.get("/_whoami")
    def _whoami():
        return request.remote_addr or ""

    client = app.test_client()
    assert client.get("/_whoami", headers={"X-Forwarded-For": "6.6.6.6"}).text == "127.0.0.1"


def test_one_trusted_proxy_gives_the_client_address(database_url, instance_dir, monkeypatch):
    from flask import request

    from filmfund import create_app

    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(instance_dir))
    monkeypatch.setenv("FILMFUND_TRUSTED_PROXIES", "1")
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})

    @app.get("/_whoami")
    def _whoami():
        return request.remote_addr or ""

    resp = app.test_client().get("/_whoami", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9"})
    assert resp.text == "203.0.113.9"


def test_the_app_builds_and_answers_with_rate_limiting_off(database_url, instance_dir, monkeypatch):
    """Flask-Limiter's own switch (RATELIMIT_ENABLED, for an app embedding filmfund or a load
    test) registers no request hook; building the app must not expect one."""
    from filmfund import create_app

    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(instance_dir))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_ENABLED": False})
    assert app.test_client().get("/healthz").status_code == 200


def test_an_app_built_after_one_with_limits_off_has_its_limits(database_url, instance_dir, monkeypatch):
    """Flask-Limiter keeps the last app's switch as its default; the next app must not inherit it."""
    from filmfund import create_app
    from filmfund.extensions import limiter

    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(instance_dir))
    create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "RATELIMIT_ENABLED": False})
    assert limiter.enabled is False
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    assert limiter.enabled is True
    limiter.reset()
    client = app.test_client()  # the pledge's limit is counted before its body is read: 30 a minute
    codes = [client.post("/api/v1/pledges", json={"amount": "lots"}).status_code for _ in range(31)]
    assert codes == [400] * 30 + [429], codes


def test_secure_cookies_use_the_host_prefix(tmp_path):
    plain = load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path)})
    secure = load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path), "FILMFUND_SECURE_COOKIES": "1"})
    assert plain["SESSION_COOKIE_SECURE"] is False
    assert secure["SESSION_COOKIE_SECURE"] is True and secure["SESSION_COOKIE_NAME"].startswith("__Host-")


def test_the_environment_is_read_in_config_only():
    """Settings have one home: a module reading os.environ or os.getenv elsewhere would be a
    setting missing from config.SETTINGS (and from the README's table)."""
    import ast

    package = Path(__file__).resolve().parents[1] / "filmfund"
    readers = []
    for path in package.rglob("*.py"):
        if path.name == "config.py" and path.parent == package:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv") \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    assert readers == []


def test_every_setting_is_in_the_readme_table():
    from filmfund.config import SETTINGS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Settings\n"):]
    section = section[:section.index("\n## ")]
    assert [s.env for s in SETTINGS if f"`{s.env}`" not in section] == []


@pytest.mark.parametrize("env,raw", [
    ("FILMFUND_MEDIA_MAX_ATTEMPTS", "three"),  # a bare int() said "invalid literal for int()", not which setting
    ("FILMFUND_MEDIA_MAX_ATTEMPTS", "0"),
    ("FILMFUND_MEDIA_STALE_SECONDS", "two minutes"),
    ("FILMFUND_MEDIA_HEARTBEAT_SECONDS", "0"),
    ("FILMFUND_MEDIA_RETRY_BASE_SECONDS", "nan"),
    ("PORT", "70000"),
    ("FILMFUND_TRUSTED_PROXIES", "-1"),
])
def test_a_wrong_number_is_refused_naming_its_setting(tmp_path, env, raw):
    with pytest.raises(SettingError) as refused:
        load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path), env: raw})
    assert str(refused.value).startswith(env) and repr(raw) in str(refused.value)


@pytest.mark.parametrize("env,raw", [
    ("FILMFUND_DATABASE_URL", "postgres://filmfund:s3cr3t@127.0.0.1/filmfund"),  # Heroku's spelling
    ("FILMFUND_DATABASE_URL", "filmfund:s3cr3t@127.0.0.1/filmfund"),
    ("FILMFUND_MIGRATION_DATABASE_URL", "postgresql+psycopg://owner:s3cr3t@127.0.0.1:port/filmfund"),
    ("FILMFUND_RATELIMIT_STORAGE_URL", "redis//:s3cr3t@127.0.0.1"),
])
def test_a_wrong_url_is_refused_naming_its_setting_and_never_its_password(tmp_path, env, raw):
    with pytest.raises(SettingError) as refused:
        load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path), env: raw})
    assert str(refused.value).startswith(env) and "s3cr3t" not in str(refused.value)


def test_numbers_and_urls_that_are_right_are_read(tmp_path):
    s = load_settings({"FILMFUND_MEDIA_MAX_ATTEMPTS": "5", "FILMFUND_MEDIA_HEARTBEAT_SECONDS": "0.3", "PORT": "0",
                       "FILMFUND_DATABASE_URL": "postgresql+psycopg://x:y@127.0.0.1:5432/db",
                       "FILMFUND_RATELIMIT_STORAGE_URL": "redis://127.0.0.1:6379/2",
                       "FILMFUND_INSTANCE_DIR": str(tmp_path)})
    assert (s["MEDIA_MAX_ATTEMPTS"], s["MEDIA_HEARTBEAT_SECONDS"], s["RUN_PORT"]) == (5, 0.3, 0)
    assert s["SQLALCHEMY_DATABASE_URI"].endswith("/db") and s["RATELIMIT_STORAGE_URI"].startswith("redis://")


def test_a_worker_warns_of_a_generated_key_on_a_shared_queue_and_of_the_default_sender(app, capsys):
    """Probe (ops, F1 and F3): a worker on a second machine, given an instance folder by `db
    upgrade`, signed mail links with its own new key, and the site refused them (unsubscribe,
    settings confirmation); a relay refused the default sender, so every receipt failed. Neither
    said a word at start (`filmfund worker` says both now)."""
    from filmfund import cli

    settings = load_settings({"FILMFUND_INSTANCE_DIR": str(app.instance_path) + "-probe",
                              "FILMFUND_SMTP_URL": "smtp://127.0.0.1:25"})
    assert {"FILMFUND_SECRET_KEY", "FILMFUND_MAIL_FROM"} <= settings["DEFAULTED"]
    given = load_settings({"FILMFUND_INSTANCE_DIR": str(app.instance_path) + "-probe",
                           "FILMFUND_SECRET_KEY": "shared", "FILMFUND_MAIL_FROM": "Film <crew@example.org>"})
    assert not {"FILMFUND_SECRET_KEY", "FILMFUND_MAIL_FROM"} & given["DEFAULTED"]

    saved = {k: app.config.get(k) for k in ("QUEUE_URL", "SMTP_URL", "DEFAULTED")}
    try:
        app.config.update(QUEUE_URL="redis://render-box:6379/0", SMTP_URL="smtp://127.0.0.1:25",
                          DEFAULTED={"FILMFUND_SECRET_KEY", "FILMFUND_MAIL_FROM"})
        cli._warn_shared_queue_own_key(app)
        cli._warn_default_sender(app)
        warned = capsys.readouterr().err
        assert "set FILMFUND_SECRET_KEY to the site's key on every machine" in warned
        assert "set FILMFUND_MAIL_FROM" in warned
        app.config.update(DEFAULTED=set())
        cli._warn_shared_queue_own_key(app)
        cli._warn_default_sender(app)
        assert capsys.readouterr().err == ""
    finally:
        app.config.update(saved)
