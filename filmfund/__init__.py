"""filmfund: fundraising, rewards and footage for an independent documentary."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported by create_app: `filmfund --help` and its like never load it
    from flask import Flask


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the app: embedded defaults, then the environment (config.py), then `overrides`."""
    # here, not at the top: importing filmfund (every module does, and the CLI) must not load Flask or the components
    from filmfund import api, audit, errors, i18n, jobs, mail, once, progress, security  # noqa: F401 (audit, once, progress: their models)
    from filmfund.config import load_settings, make_private
    from filmfund.extensions import csrf, db, limiter, login_manager, route_limits_only
    from filmfund.flask_app import FilmfundFlask
    from filmfund.migrating import LazyDbGroup

    app = FilmfundFlask(__name__)
    # <int:...> in a URL stops at the database's integer range: a larger id is a 404, not an overflow.
    from filmfund.security import BoundedIntConverter

    app.url_map.converters["int"] = BoundedIntConverter
    app.config.update(load_settings())
    if overrides:
        app.config.update(overrides)
    # Flask-Limiter takes the switch of the last app it was bound to as its default: an app built
    # after one with limits off (a test, an embedding app) would have none. Each app decides.
    app.config.setdefault("RATELIMIT_ENABLED", True)
    # Redis down: each process counts the pages' limits in its own memory meanwhile (the API's
    # too: extensions.StorageOutage), so gifts and sign-ins go on, still limited. A Redis that
    # does not answer is given up on within 2 s, not the system's minutes.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    if app.config.get("RATELIMIT_STORAGE_URI", "").startswith(("redis://", "rediss://")):
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 2, "socket_timeout": 2})
    app.instance_path = app.config["INSTANCE_DIR"]
    make_private(app.config)
    # In front of Flask (behind ProxyFix, which sets the scheme and host it keys on): the public
    # answers every anonymous reader gets alike, kept a second (shared_cache.py).
    from filmfund.shared_cache import SharedCache

    app.wsgi_app = SharedCache(app.wsgi_app, api.PUBLIC_PATHS)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    # Flask-Migrate (alembic, mako, pygments) only when `filmfund db …` runs: see migrating.py.
    app.cli.add_command(LazyDbGroup(app))
    login_manager.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    audit.init_app(app)
    jobs.init_app(app)
    mail.init_app(app)

    from filmfund import admin, auth, books, comms, fulfil, media, rewards, site

    for component in (auth, rewards, media, site, admin, comms, fulfil, books):
        component.init_app(app)
    api.init_app(app)
    route_limits_only(app)
    return app
