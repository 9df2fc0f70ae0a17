"""Settings: embedded defaults that make a bare machine work, overridden by the environment.

Every setting is optional (see the README's table). Secrets are never in code: the secret key
and the test-mode webhook secret are generated once and kept in the instance folder.
"""
from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

BUNDLED_CAMPAIGN = Path(__file__).parent / "campaigns" / "living-with-dead-hearts.toml"


def _kept_secret(instance: Path, name: str, prefix: str = "") -> str:
    """Read a secret kept under the instance folder, creating it (mode 600) the first time."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    value = prefix + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def _tighten(path: Path, mode: int) -> bool:
    """Give `path` this mode; True when it had another (so it was changed, or tried)."""
    try:
        if path.exists() and not path.is_symlink() and path.stat().st_mode & 0o777 != mode:
            path.chmod(mode)
            return True
    except OSError:
        pass  # not ours to change (a shared mount): the umask still keeps new files private
    return False


def make_private(config: dict[str, Any]) -> None:
    """The instance folder 0700 and its files 0600, also those an older version left world-readable:
    the SQLite database (with its -wal and -shm), the queue, the secrets and the outbox's mails."""
    instance = Path(config["INSTANCE_DIR"])
    _tighten(instance, 0o700)
    _tighten(instance / "media", 0o700)
    files = [p for p in instance.iterdir() if p.is_file()]
    # Every process starts here, and the outbox can hold a mail per donor: its files are walked
    # only while the folder itself was not private yet (an older version's), since every mail
    # written since is 0600 in a 0700 folder.
    outbox = Path(config["OUTBOX_DIR"])
    if _tighten(outbox, 0o700):
        files += [p for p in outbox.glob("*") if p.is_file()]
    for url in (config.get("SQLALCHEMY_DATABASE_URI") or "", config.get("QUEUE_URL") or ""):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            db_file = Path(url[len("sqlite:///"):].split("?", 1)[0])
            files += [db_file, Path(f"{db_file}-wal"), Path(f"{db_file}-shm"), Path(f"{db_file}-journal")]
    for path in files:
        _tighten(path, 0o600)


def check_test_payments(config: dict[str, Any], host: str) -> str | None:
    """Why `filmfund run` must not start on `host`, in one line; None when it may.

    Without a Stripe key payments are simulated: anyone reaching the server could "pay" and get
    rewards and donor-only media. So test payments are served on a loopback address only, unless
    FILMFUND_TEST_PAYMENTS=1 says this is a staging server.
    """
    if not config.get("STRIPE_TEST_MODE") or config.get("TEST_PAYMENTS"):
        return None
    if is_loopback(host):
        return None
    return (f"refusing to serve test payments on {host or 'every address'}: without STRIPE_SECRET_KEY anyone who "
            "reaches the server can pay with simulated money; use --host 127.0.0.1, set STRIPE_SECRET_KEY, "
            "or FILMFUND_TEST_PAYMENTS=1 on a staging server")


def test_payment_refusal(config: dict[str, Any], client_addr: str | None, host: str | None) -> str | None:
    """Why this request may not pay with test money, in one line; None when it may.

    The same rule as check_test_payments, held by the application itself, whatever WSGI server
    runs it (gunicorn binds where its operator says, and a reverse proxy on this machine makes
    every client look local): without a Stripe key and without FILMFUND_TEST_PAYMENTS=1, a test
    payment needs both the client's address and the Host it asked for to be this machine's own.
    """
    if not config.get("STRIPE_TEST_MODE") or config.get("TEST_PAYMENTS"):
        return None
    from urllib.parse import urlsplit

    try:
        hostname = urlsplit("//" + (host or "")).hostname or ""
    except ValueError:
        hostname = ""
    if is_loopback(client_addr or "") and is_loopback(hostname):
        return None
    return ("Test payments (no STRIPE_SECRET_KEY) are taken from this machine only; "
            "a staging server sets FILMFUND_TEST_PAYMENTS=1.")


def is_loopback(host: str) -> bool:
    import ipaddress

    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name could resolve to anything


def _positive_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name) or ""
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


KNOWN_LANGUAGES = ("en", "zh-Hans")


def _languages(raw: str | None) -> list[str]:
    """FILMFUND_LANGUAGES, e.g. "en,zh-Hans": known tags only (each needs its catalogue)."""
    if raw is None or not raw.strip():
        return list(KNOWN_LANGUAGES)
    by_lower = {tag.lower(): tag for tag in KNOWN_LANGUAGES}
    tags = []
    for part in raw.split(","):
        tag = by_lower.get(part.strip().replace("_", "-").lower())
        if tag is None:
            raise ValueError(f"FILMFUND_LANGUAGES: {part.strip()!r} is not one of {', '.join(KNOWN_LANGUAGES)}")
        if tag not in tags:
            tags.append(tag)
    return tags


def _payment_methods(raw: str | None) -> list[str]:
    """FILMFUND_PAYMENT_METHODS: unset means card, Alipay and WeChat Pay; set but empty means none
    sent (Stripe then offers what its Dashboard enables)."""
    if raw is None:
        return ["card", "alipay", "wechat_pay"]
    methods = [m.strip().lower() for m in raw.split(",") if m.strip()]
    for method in methods:
        if not re.fullmatch(r"[a-z_]{2,40}", method):
            raise ValueError(f"FILMFUND_PAYMENT_METHODS: {method!r} is not a Stripe payment method type")
    return list(dict.fromkeys(methods))


def load_settings(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    instance = Path(env.get("FILMFUND_INSTANCE_DIR") or Path.cwd() / "instance").resolve()
    os.umask(0o077)  # everything this process creates (databases, queue, mail, media) is the owner's alone
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("media", "outbox"):
        (instance / sub).mkdir(mode=0o700, exist_ok=True)

    stripe_key = env.get("STRIPE_SECRET_KEY") or None
    secure_cookies = env.get("FILMFUND_SECURE_COOKIES", "") == "1"
    settings: dict[str, Any] = {
        "INSTANCE_DIR": str(instance),
        "SQLALCHEMY_DATABASE_URI": env.get("FILMFUND_DATABASE_URL")
        or f"sqlite:///{instance / 'filmfund.db'}",
        # `filmfund db upgrade` only: the role that owns the tables, when the runtime role above is
        # another one (PostgreSQL); it then grants the runtime role its share (filmfund/db_roles.py).
        "MIGRATION_DATABASE_URI": env.get("FILMFUND_MIGRATION_DATABASE_URL") or None,
        "STORAGE_URL": env.get("FILMFUND_STORAGE_URL") or (instance / "media").as_uri(),
        "S3_ENDPOINT_URL": env.get("FILMFUND_S3_ENDPOINT_URL") or None,
        "QUEUE_URL": env.get("FILMFUND_QUEUE_URL") or f"sqlite:///{instance / 'queue.db'}",
        "SMTP_URL": env.get("FILMFUND_SMTP_URL") or None,
        "MAIL_FROM": env.get("FILMFUND_MAIL_FROM") or "filmfund <noreply@filmfund.localhost>",
        "OUTBOX_DIR": str(instance / "outbox"),
        "SECRET_KEY": env.get("FILMFUND_SECRET_KEY") or _kept_secret(instance, "secret_key"),
        "CAMPAIGN_FILE": env.get("FILMFUND_CAMPAIGN_FILE") or str(BUNDLED_CAMPAIGN),
        "STRIPE_SECRET_KEY": stripe_key,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET")
        or _kept_secret(instance, "stripe_webhook_secret", prefix="whsec_"),
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        "STRIPE_TEST_MODE": stripe_key is None,
        "PUBLIC_URL": (env.get("FILMFUND_PUBLIC_URL") or "").rstrip("/") or None,
        # How many reverse proxies stand in front (their X-Forwarded-For/-Proto are then trusted).
        "TRUSTED_PROXIES": int(env.get("FILMFUND_TRUSTED_PROXIES") or 0),
        "RATELIMIT_STORAGE_URI": env.get("FILMFUND_RATELIMIT_STORAGE_URL") or "memory://",
        # A pledge body or a login form is small; uploads go through their own streamed route.
        "MAX_JSON_BYTES": 16 * 1024,
        "MAX_CONTENT_LENGTH": int(env.get("FILMFUND_MAX_UPLOAD_BYTES") or 64 * 1024**3),
        "MEDIA_LINK_TTL": int(env.get("FILMFUND_MEDIA_LINK_TTL") or 300),
        "MAGIC_LINK_TTL": 15 * 60,
        "RESET_LINK_TTL": 30 * 60,
        # A per-email cap that never locks the owner out (see filmfund/auth/links.py).
        "LOGIN_LINKS_PER_EMAIL": 3,
        "LOGIN_MAILS_PER_HOUR": 5,
        # Producers sign in with a password and a TOTP code; FILMFUND_STAFF_TOTP=0 drops the code.
        "STAFF_TOTP": env.get("FILMFUND_STAFF_TOTP", "1") != "0",
        "TOKEN_TTL_DAYS": _positive_int(env, "FILMFUND_TOKEN_TTL_DAYS", 90),
        # Without a Stripe key, `filmfund run` serves test payments on loopback only, unless this is 1.
        "TEST_PAYMENTS": env.get("FILMFUND_TEST_PAYMENTS", "") == "1",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        # Behind HTTPS the __Host- prefix pins the cookie to this exact origin (no Domain, path /).
        "SESSION_COOKIE_NAME": "__Host-session" if secure_cookies else "session",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # No ping on every checkout (a round trip per request); a connection the server dropped
        # fails its request once and is replaced, and none is kept longer than an hour.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "pool_recycle": 3600},
        "WTF_CSRF_TIME_LIMIT": None,
        # The languages offered (BCP 47 tags), the first the default; see filmfund/i18n.py.
        "LANGUAGES": _languages(env.get("FILMFUND_LANGUAGES")),
        # Checkout's payment_method_types for one-time gifts; empty: the methods set in Stripe's Dashboard.
        "PAYMENT_METHODS": _payment_methods(env.get("FILMFUND_PAYMENT_METHODS")),
    }
    return settings
