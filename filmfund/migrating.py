"""Migrations (Flask-Migrate), bound to the app only when asked for.

Importing flask_migrate imports alembic, mako and pygments: about 10 MiB resident that the web
processes and the worker never use. So create_app registers a `db` command group that loads
them when `filmfund db …` runs, and code that migrates programmatically (flask_migrate.upgrade()
and friends) calls `init_app(app)` first.
"""
from __future__ import annotations

from pathlib import Path

import click

from filmfund.extensions import db


def init_app(app):
    """Bind Flask-Migrate to `app` (app.extensions["migrate"] and the real `db` group); idempotent."""
    from flask_migrate import Migrate  # with alembic and mako: only `filmfund db …` pays for them

    if "migrate" not in app.extensions:
        Migrate(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"),
                render_as_batch=True)
    return app.cli.commands["db"]


class LazyDbGroup(click.Group):
    """`filmfund db …`: Flask-Migrate's group, imported on first use (its options declared here
    so the command line parses the same; the real group then runs it)."""

    def __init__(self, app):
        super().__init__(name="db", help="Perform database migrations.", params=[
            click.Option(["-d", "--directory"], default=None,
                         help='Migration script directory (default is "migrations")'),
            click.Option(["-x", "--x-arg"], multiple=True,
                         help="Additional arguments consumed by custom env.py scripts"),
        ])
        self._app = app

    def list_commands(self, ctx):
        return init_app(self._app).list_commands(ctx)

    def get_command(self, ctx, cmd_name):
        return init_app(self._app).get_command(ctx, cmd_name)

    def invoke(self, ctx):
        return init_app(self._app).invoke(ctx)
