"""Settings: embedded defaults that make a bare machine work, overridden by the environment.

Every setting is optional (see the README's table). Secrets are never in code: the secret key
and the test-mode webhook secret are generated once and kept in the instance folder.
"""
from __future__ import annotations

import os
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


def load_settings(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    instance = Path(env.get("FILMFUND_INSTANCE_DIR") or Path.cwd() / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    for sub in ("media", "outbox"):
        (instance / sub).mkdir(exist_ok=True)

    stripe_key = env.get("STRIPE_SECRET_KEY") or None
    secure_cookies = env.get("FILMFUND_SECURE_COOKIES", "") == "1"
    settings: dict[str, Any] = {
        "INSTANCE_DIR": str(instance),
        "SQLALCHEMY_DATABASE_URI": env.get("FILMFUND_DATABASE_URL")
        or f"sqlite:///{instance / 'filmfund.db'}",
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
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        # Behind HTTPS the __Host- prefix pins the cookie to this exact origin (no Domain, path /).
        "SESSION_COOKIE_NAME": "__Host-session" if secure_cookies else "session",
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_TIME_LIMIT": None,
    }
    return settings
