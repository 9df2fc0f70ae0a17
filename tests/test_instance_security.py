"""Private by default (issue 7.7) and test payments only where they belong (issue 7.4).

The instance folder is 0700 and its files 0600 (SQLite and its -wal/-shm, the queue, the
secrets, the outbox's mails), also when an older version left them world-readable. Cookies are
Secure whenever the request is HTTPS. Without a Stripe key `filmfund run` refuses any address
but loopback, in one line, unless FILMFUND_TEST_PAYMENTS=1.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund import create_app, jobs
from filmfund.config import is_loopback, load_settings, check_test_payments
from filmfund.extensions import db

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "filmfund"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def bare_env(monkeypatch, tmp_path):
    for var in list(os.environ):
        if var.startswith(("FILMFUND_", "STRIPE_")):
            monkeypatch.delenv(var)
    instance = tmp_path / "instance"
    monkeypatch.setenv("FILMFUND_INSTANCE_DIR", str(instance))
    return instance


def test_instance_folder_and_every_file_in_it_are_private(bare_env):
    from filmfund.mail import send_mail
    from filmfund.rewards.receipts import retry_receipt

    instance = bare_env
    app = create_app({"TESTING": True})  # the embedded defaults: SQLite and the queue in the instance folder
    with app.app_context():
        db.create_all()
        with db.engine.connect() as conn:  # an open connection keeps the -wal and -shm files
            conn.execute(sa.text("SELECT count(*) FROM users"))
            send_mail("donor@example.org", "Your sign-in link", "http://127.0.0.1:5000/login/magic/secret")
            retry_receipt(1)  # a task in the queue's SQLite file
            names = {p.name for p in instance.iterdir()}
            assert {"filmfund.db", "filmfund.db-wal", "filmfund.db-shm", "queue.db", "secret_key",
                    "stripe_webhook_secret", "outbox", "media"} <= names, names
            assert mode(instance) == 0o700
            for path in instance.rglob("*"):
                assert mode(path) == (0o700 if path.is_dir() else 0o600), path
            assert len(list((instance / "outbox").glob("*.eml"))) == 1
        db.engine.dispose()
    jobs.flush()


def test_files_an_older_version_left_readable_are_tightened(bare_env):
    instance = bare_env
    (instance / "outbox").mkdir(parents=True)
    instance.chmod(0o755)
    (instance / "outbox").chmod(0o755)
    old = [instance / "filmfund.db", instance / "filmfund.db-wal", instance / "queue.db",
           instance / "outbox" / "old.eml"]
    for path in old:
        path.write_bytes(b"")
        path.chmod(0o644)
    create_app({"TESTING": True})
    assert mode(instance) == mode(instance / "outbox") == 0o700
    assert [mode(p) for p in old] == [0o600] * len(old)


@pytest.mark.parametrize("app_overrides", [{"TRUSTED_PROXIES": 1}])
def test_cookies_are_secure_whenever_the_request_is_https(app, app_overrides):
    def session_cookie(**kwargs) -> str:
        resp = app.test_client().get("/login", **kwargs)  # the sign-in form stores a CSRF token in the session
        cookies = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("session=")]
        assert cookies, resp.headers
        return cookies[0]

    assert "Secure" not in session_cookie()
    assert "Secure" in session_cookie(base_url="https://film.example")
    # behind the trusted proxy, its X-Forwarded-Proto says https
    assert "Secure" in session_cookie(headers={"X-Forwarded-Proto": "https"})


def test_an_untrusted_forwarded_proto_does_not_count(app):
    resp = app.test_client().get("/login", headers={"X-Forwarded-Proto": "https"})
    assert all("Secure" not in c for c in resp.headers.getlist("Set-Cookie"))


def test_run_refuses_a_public_address_in_test_mode_in_one_line(bare_env):
    env = {k: v for k, v in os.environ.items()}
    proc = subprocess.run([str(BIN), "run", "--host", "0.0.0.0", "--port", "0"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "refusing to serve test payments on 0.0.0.0" in lines[0]
    assert "FILMFUND_TEST_PAYMENTS=1" in lines[0]


@pytest.mark.parametrize("env, host, refused", [
    ({}, "127.0.0.1", False), ({}, "localhost", False), ({}, "::1", False), ({}, "[::1]", False),
    ({}, "127.0.0.2", False), ({}, "0.0.0.0", True), ({}, "", True), ({}, "::", True),
    ({}, "192.168.1.10", True), ({}, "film.example", True),
    ({"FILMFUND_TEST_PAYMENTS": "1"}, "0.0.0.0", False), ({"FILMFUND_TEST_PAYMENTS": "0"}, "0.0.0.0", True),
    ({"STRIPE_SECRET_KEY": "sk_test_x"}, "0.0.0.0", False),
])
def test_which_addresses_serve_test_payments(tmp_path, env, host, refused):
    settings = load_settings({"FILMFUND_INSTANCE_DIR": str(tmp_path / "i"), **env})
    assert (check_test_payments(settings, host) is not None) is refused


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("LOCALHOST") and not is_loopback("localhost.evil.example")
