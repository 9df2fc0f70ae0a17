"""Settings: embedded defaults that make a bare machine work, overridden by the environment.

Every setting is optional (see the README's table). Secrets are never in code: the secret key
and the test-mode webhook secret are generated once and kept in the instance folder.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

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
    from urllib.parse import urlsplit  # light module: `media ingest --wait` loads it before the app

    try:
        hostname = urlsplit("//" + (host or "")).hostname or ""
    except ValueError:
        hostname = ""
    if is_loopback(client_addr or "") and is_loopback(hostname):
        return None
    return ("Test payments (no STRIPE_SECRET_KEY) are taken from this machine only; "
            "a staging server sets FILMFUND_TEST_PAYMENTS=1.")


def is_loopback(host: str) -> bool:
    import ipaddress  # light module: `media ingest --wait` loads it before the app

    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name could resolve to anything


class SettingError(ValueError):
    """A setting the operator got wrong. The message names the setting (FILMFUND_...: ...) and
    never holds a URL's password: the command line says it in one line (filmfund/cli.py)."""


def _positive_int(name: str, raw: str) -> int:
    if not raw.strip().isdecimal() or int(raw) < 1:
        raise SettingError(f"{name} must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def _non_negative_int(name: str, raw: str) -> int:
    if not raw.strip().isdecimal():
        raise SettingError(f"{name} must be a whole number (0 or more), not {raw!r}")
    return int(raw)


def _whole(name: str, least: int = 0, most: int | None = None) -> Callable[[str], int]:
    """The parser of a whole-number setting: its error names the setting (a bare int() said
    "invalid literal for int() with base 10" and no more)."""
    def parse(raw: str) -> int:
        value = _positive_int(name, raw) if least == 1 else _non_negative_int(name, raw)
        if value < least or (most is not None and value > most):
            raise SettingError(f"{name} must be a whole number from {least}"
                               + (f" to {most}" if most is not None else " up") + f", not {raw!r}")
        return value
    return parse


def _seconds(name: str, positive: bool = False) -> Callable[[str], float]:
    """The parser of a number-of-seconds setting (decimals allowed), its error naming the setting."""
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise SettingError(f"{name} must be a number of seconds {'above' if positive else 'of at least'} 0 "
                               f"(such as 30 or 0.5), not {raw!r}")
        return value
    return parse


def _url_scheme(name: str, raw: str, example: str) -> str:
    """The scheme of a URL setting, lower-cased. What is said of a wrong one shows its scheme at
    most, never the rest (a password may be in it)."""
    scheme, sep, _rest = raw.strip().partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise SettingError(f"{name} is not a URL (such as {example})")
    try:
        urlsplit(raw.strip()).port  # a port that is not a number fails here, not at the first connection
    except ValueError:
        raise SettingError(f"{name}: its port is not a number") from None
    return scheme.lower()


def _database_url(name: str) -> Callable[[str], str]:
    """A database URL: SQLite or PostgreSQL, the two filmfund runs on and migrates."""
    example = "sqlite:////path/filmfund.db or postgresql+psycopg://user@host/name"

    def parse(raw: str) -> str:
        dialect, _plus, driver = _url_scheme(name, raw, example).partition("+")
        if dialect not in ("sqlite", "postgresql"):
            raise SettingError(f"{name}: {dialect!r} is not a database filmfund runs on (use {example})")
        if dialect == "postgresql" and not driver and importlib.util.find_spec("psycopg2") is None:
            raise SettingError(f"{name}: write postgresql+psycopg:// (a bare postgresql:// asks for psycopg2, "
                               "which is not installed)")
        return raw.strip()
    return parse


def _ratelimit_url(raw: str) -> str:
    """FILMFUND_RATELIMIT_STORAGE_URL: the scheme is checked by the limits library when the app
    is built (memory://, redis://, ...); here only that it is a URL."""
    _url_scheme("FILMFUND_RATELIMIT_STORAGE_URL", raw, "memory:// or redis://host:6379/1")
    return raw.strip()


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
            raise SettingError(f"FILMFUND_LANGUAGES: {part.strip()!r} is not one of {', '.join(KNOWN_LANGUAGES)}")
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
            raise SettingError(f"FILMFUND_PAYMENT_METHODS: {method!r} is not a Stripe payment method type")
    return list(dict.fromkeys(methods))


def _on(raw: str) -> bool:
    return raw == "1"


def child_environment(**settings: str) -> dict[str, str]:
    """This process's environment plus `settings`: for a process we start (the embedded worker of
    `filmfund run`), which reads its settings from the environment like any other."""
    return {**os.environ, **settings}


@dataclass(frozen=True)
class Setting:
    """One setting: the environment variable that sets it, the app.config key it is read into,
    its default (a value, or a function of the instance folder), and what it means (the README's
    Settings table says the same for operators)."""

    env: str
    key: str
    default: Any
    meaning: str
    parse: Callable[[str], Any] = str
    read_blank: bool = False  # set but empty means something of its own (not the default)


# Every setting read from the environment, read once (load_settings, from create_app); the rest of
# the code reads app.config. An empty variable counts as unset.
SETTINGS: tuple[Setting, ...] = (
    Setting("FILMFUND_DATABASE_URL", "SQLALCHEMY_DATABASE_URI", lambda i: f"sqlite:///{i / 'filmfund.db'}",
            "the database: SQLite in the instance folder, or postgresql+psycopg://...",
            _database_url("FILMFUND_DATABASE_URL")),
    Setting("FILMFUND_MIGRATION_DATABASE_URL", "MIGRATION_DATABASE_URI", None,
            "`filmfund db upgrade` only: the role that owns the tables, when the runtime role is another "
            "(PostgreSQL); it grants the runtime role its share (filmfund/db_roles.py)",
            _database_url("FILMFUND_MIGRATION_DATABASE_URL")),
    Setting("FILMFUND_STORAGE_URL", "STORAGE_URL", lambda i: (i / "media").as_uri(),
            "where footage is kept: a file:// folder or s3://bucket/prefix"),
    Setting("FILMFUND_S3_ENDPOINT_URL", "S3_ENDPOINT_URL", None, "an S3-compatible server instead of AWS"),
    Setting("FILMFUND_QUEUE_URL", "QUEUE_URL", lambda i: f"sqlite:///{i / 'queue.db'}",
            "the job queue: huey on a SQLite file, or redis://..."),
    Setting("FILMFUND_SMTP_URL", "SMTP_URL", None, "smtp://user:pass@host:port; unset: mail goes to the outbox folder"),
    Setting("FILMFUND_MAIL_FROM", "MAIL_FROM", "filmfund <noreply@filmfund.localhost>", "the sender of every mail"),
    Setting("FILMFUND_SECRET_KEY", "SECRET_KEY", lambda i: _kept_secret(i, "secret_key"),
            "signs sessions and links; generated once and kept in the instance folder"),
    Setting("FILMFUND_CAMPAIGN_FILE", "CAMPAIGN_FILE", str(BUNDLED_CAMPAIGN), "the campaign's TOML file"),
    Setting("STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY", None, "a Stripe key; unset: test-mode payments"),
    Setting("STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET",
            lambda i: _kept_secret(i, "stripe_webhook_secret", prefix="whsec_"),
            "the webhook endpoint's secret; generated for test mode"),
    Setting("STRIPE_API_BASE", "STRIPE_API_BASE", None, "another base URL for Stripe's API (the tests')"),
    Setting("FILMFUND_PUBLIC_URL", "PUBLIC_URL", None, "the public base URL of links in mail and of Stripe's returns",
            lambda raw: raw.rstrip("/") or None),
    Setting("FILMFUND_SERVED_URL", "FALLBACK_PUBLIC_URL", None,
            "set by `filmfund run` for its web processes and embedded worker: the address it serves on, the "
            "base of links in mail while FILMFUND_PUBLIC_URL is unset", lambda raw: raw.rstrip("/") or None),
    Setting("FILMFUND_TRUSTED_PROXIES", "TRUSTED_PROXIES", 0,
            "how many reverse proxies stand in front (their X-Forwarded-For/-Proto are then trusted)",
            _whole("FILMFUND_TRUSTED_PROXIES")),
    Setting("FILMFUND_RATELIMIT_STORAGE_URL", "RATELIMIT_STORAGE_URI", "memory://",
            "where rate limits are counted: in-process, or redis:// shared by every web process", _ratelimit_url),
    Setting("FILMFUND_MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES", 64 * 1024**3, "the largest footage upload",
            _whole("FILMFUND_MAX_UPLOAD_BYTES", 1)),
    Setting("FILMFUND_PUBLIC_CACHE_SECONDS", "PUBLIC_CACHE_SECONDS", 1,
            "seconds each web process may answer the public campaign document (its figures) from its shared cache "
            "(filmfund/shared_cache.py); 0: never", _whole("FILMFUND_PUBLIC_CACHE_SECONDS")),
    Setting("FILMFUND_MEDIA_LINK_TTL", "MEDIA_LINK_TTL", 300, "seconds a signed media link works",
            _whole("FILMFUND_MEDIA_LINK_TTL", 1)),
    Setting("FILMFUND_STAFF_TOTP", "STAFF_TOTP", True, "producers sign in with a TOTP code too (0: password only)",
            lambda raw: raw != "0"),
    Setting("FILMFUND_TOKEN_TTL_DAYS", "TOKEN_TTL_DAYS", 90, "days an API token lives",
            _whole("FILMFUND_TOKEN_TTL_DAYS", 1)),
    Setting("FILMFUND_TEST_PAYMENTS", "TEST_PAYMENTS", False,
            "1: test payments served beyond this machine (a staging server)", _on),
    Setting("FILMFUND_SECURE_COOKIES", "SECURE_COOKIES", False, "1 behind HTTPS: Secure __Host- cookies, HSTS", _on),
    Setting("HOST", "RUN_HOST", "127.0.0.1", "the address `filmfund run` serves on without --host"),
    Setting("PORT", "RUN_PORT", 5000, "the port `filmfund run` serves on without --port",
            _whole("PORT", 0, 65535)),
    Setting("FILMFUND_LANGUAGES", "LANGUAGES", lambda i: list(KNOWN_LANGUAGES),
            "the languages offered (BCP 47 tags), the first the default; see filmfund/i18n.py", _languages),
    Setting("FILMFUND_PAYMENT_METHODS", "PAYMENT_METHODS", lambda i: _payment_methods(None),
            "Checkout's payment_method_types for one-time gifts; set but empty: those set in Stripe's Dashboard",
            _payment_methods, read_blank=True),
    # Footage (filmfund.media) and ffmpeg.
    Setting("FILMFUND_MEDIA_PROFILES", "MEDIA_PROFILES_FILE", str(Path(__file__).parent / "media" / "profiles.toml"),
            "the encoding profiles (proxy, web, poster, strip)"),
    Setting("FILMFUND_MEDIA_FFMPEG_TIMEOUT", "MEDIA_FFMPEG_TIMEOUT", 0.0,
            "seconds per ffmpeg run; 0: derived from the clip's duration", _seconds("FILMFUND_MEDIA_FFMPEG_TIMEOUT")),
    Setting("FILMFUND_MEDIA_MAX_ATTEMPTS", "MEDIA_MAX_ATTEMPTS", 3, "attempts per media job",
            _whole("FILMFUND_MEDIA_MAX_ATTEMPTS", 1)),
    Setting("FILMFUND_MEDIA_RETRY_BASE_SECONDS", "MEDIA_RETRY_BASE_SECONDS", 60.0,
            "the first retry's delay, doubled per attempt", _seconds("FILMFUND_MEDIA_RETRY_BASE_SECONDS")),
    Setting("FILMFUND_MEDIA_HEARTBEAT_SECONDS", "MEDIA_HEARTBEAT_SECONDS", 5.0, "a running job's heartbeat",
            _seconds("FILMFUND_MEDIA_HEARTBEAT_SECONDS", positive=True)),
    Setting("FILMFUND_MEDIA_STALE_SECONDS", "MEDIA_STALE_SECONDS", 120.0,
            "a running job without a heartbeat this long is re-queued",
            _seconds("FILMFUND_MEDIA_STALE_SECONDS", positive=True)),
    Setting("FILMFUND_MEDIA_S3_PART_SIZE", "MEDIA_S3_PART_SIZE", 8 * 1024 * 1024, "bytes per S3 multipart part",
            _whole("FILMFUND_MEDIA_S3_PART_SIZE", 1)),
    Setting("FILMFUND_MEDIA_RESCUE", "MEDIA_RESCUE", True, "a damaged clip gets a partial rescue proxy (0: none)", _on),
    Setting("FILMFUND_MEDIA_SINGLE_PASS", "MEDIA_SINGLE_PASS", True,
            "one decode at ingest checks every frame and writes the proxy, poster and strip "
            "(0: one decode per rendition)", _on),
    Setting("FILMFUND_REPLICA_URL", "REPLICA_URL", None, "the second copy of every original (file:// or s3://)"),
    Setting("FILMFUND_REPLICA_S3_ENDPOINT_URL", "REPLICA_S3_ENDPOINT_URL", None,
            "another S3-compatible server for the second copy"),
    Setting("FILMFUND_MEDIA_UPLOAD_CHUNK", "MEDIA_UPLOAD_CHUNK", 8 * 1024 * 1024,
            "bytes per request of a resumable upload from the footage page", _whole("FILMFUND_MEDIA_UPLOAD_CHUNK", 1)),
    Setting("FILMFUND_MEDIA_INCOMING_MAX_AGE", "MEDIA_INCOMING_MAX_AGE", 24 * 3600.0,
            "seconds before an untouched temporary upload is swept",
            _seconds("FILMFUND_MEDIA_INCOMING_MAX_AGE", positive=True)),
    Setting("FILMFUND_MEDIA_MAX_PIXELS", "MEDIA_MAX_PIXELS", 100_000_000,
            "pixels per picture ffmpeg decodes (max_pixels); a larger one is refused",
            _whole("FILMFUND_MEDIA_MAX_PIXELS", 1)),
    Setting("FILMFUND_MEDIA_MEMORY_MB", "MEDIA_MEMORY_MB", 3072,
            "MiB of address space per ffmpeg/ffprobe run (prlimit --as); 0: no limit", _whole("FILMFUND_MEDIA_MEMORY_MB")),
    Setting("FILMFUND_MEDIA_VIEWING_DAYS", "MEDIA_VIEWING_DAYS", 30,
            "days a donor's viewing (hashed address) is kept before it is purged", _whole("FILMFUND_MEDIA_VIEWING_DAYS")),
    Setting("FILMFUND_MEDIA_FLAG_ADDRESSES", "MEDIA_FLAG_ADDRESSES", 3,
            "distinct addresses one donor's stream may come from in 10 minutes before it is flagged",
            _whole("FILMFUND_MEDIA_FLAG_ADDRESSES", 1)),
    Setting("FILMFUND_ENCODE_SLOTS", "ENCODE_SLOTS", 1,
            "ffmpeg encodes a worker process runs at once, whatever its threads",
            _whole("FILMFUND_ENCODE_SLOTS", 1)),
    Setting("FILMFUND_FFMPEG", "FFMPEG", "ffmpeg", "the ffmpeg program"),
    Setting("FILMFUND_FFPROBE", "FFPROBE", "ffprobe", "the ffprobe program"),
    Setting("FILMFUND_FFMPEG_PDEATHSIG", "FFMPEG_PDEATHSIG", True,
            "ffmpeg dies with the worker that started it (setpriv --pdeathsig; 0: not)", _on),
)


def instance_dir_is_chosen() -> bool:
    """Whether the operator named the instance folder (FILMFUND_INSTANCE_DIR) rather than leaving
    it to default to ./instance: the CLI asks before it would start a stray one."""
    return bool(os.environ.get("FILMFUND_INSTANCE_DIR"))


REQUEST_BODY_FLOOR = 64 * 1024**2


def load_settings(env: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if env is None else env)
    instance = Path(env.get("FILMFUND_INSTANCE_DIR") or Path.cwd() / "instance").resolve()
    os.umask(0o077)  # everything this process creates (databases, queue, mail, media) is the owner's alone
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    for sub in ("media", "outbox"):
        (instance / sub).mkdir(mode=0o700, exist_ok=True)

    settings: dict[str, Any] = {"INSTANCE_DIR": str(instance), "OUTBOX_DIR": str(instance / "outbox")}
    for s in SETTINGS:
        raw = env.get(s.env)
        if raw is not None and (raw or s.read_blank):
            try:
                settings[s.key] = s.parse(raw)
            except SettingError:
                raise
            except ValueError as err:  # a parser without a name of its own: the setting's, at least
                raise SettingError(f"{s.env}: {err}") from None
        else:
            settings[s.key] = s.default(instance) if callable(s.default) else s.default
            settings.setdefault("DEFAULTED", set()).add(s.env)  # which settings were left unset
    secure_cookies = settings["SECURE_COOKIES"]
    settings.update({
        # The largest body of any one request (Flask's MAX_CONTENT_LENGTH, and waitress's in
        # `filmfund run`, which reads a whole body to a temporary file before the app is asked):
        # footage comes in chunks (resumable uploads, direct to S3; the command line reads files),
        # so a stranger's 64 GiB POST to /login fills no disk. The one-request upload form of a page
        # without its script takes files up to this size.
        "MAX_CONTENT_LENGTH": max(2 * settings["MEDIA_UPLOAD_CHUNK"], REQUEST_BODY_FLOOR),
        "STRIPE_TEST_MODE": settings["STRIPE_SECRET_KEY"] is None,
        # A pledge body or a login form is small; uploads go through their own streamed route.
        "MAX_JSON_BYTES": 16 * 1024,
        "MAGIC_LINK_TTL": 15 * 60,
        "RESET_LINK_TTL": 30 * 60,
        # A per-email cap that never locks the owner out (see filmfund/auth/links.py).
        "LOGIN_LINKS_PER_EMAIL": 3,
        "LOGIN_MAILS_PER_HOUR": 5,
        "MEDIA_PROFILE_OVERRIDES": {},
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
    })
    return settings
