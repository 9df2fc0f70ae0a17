"""The one Flask app of a command line run, built when a command first needs it.

`filmfund --help`, `filmfund media --help` and a command that finds nothing to do import no
Flask and build no app (building it imports every component: about a second). Commands that do
need it wrap their body in `needs_app`; flask.cli's `with_appcontext` (the other components'
commands) shares the same app through the `ScriptInfo` the root group puts in the context.
Kept apart from filmfund.cli so a component's commands can use it without importing the root.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

APP_FACTORY = "filmfund.app_factory"  # ctx.meta key: the root group's factory


def script_info(ctx: click.Context):
    """flask.cli's ScriptInfo of this run: the caller's (Flask's test runner gives one), else one
    made from the root group's factory, kept on the root context (so the app is built once)."""
    from flask.cli import ScriptInfo

    info = ctx.find_object(ScriptInfo)
    if info is None:
        root = ctx.find_root()
        info = ScriptInfo(create_app=ctx.meta.get(APP_FACTORY), set_debug_flag=False)
        root.obj = info
    return info


def needs_app(f: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command inside the app's context, building the app only now (after the command's
    arguments are parsed and checked) and only once per command line."""

    @click.pass_context
    @functools.wraps(f)
    def run(ctx: click.Context, /, *args, **kwargs):
        from flask import current_app

        if not current_app:
            ctx.with_resource(script_info(ctx).load_app().app_context())
        return ctx.invoke(f, *args, **kwargs)

    return run


def app_context(ctx: click.Context | None = None):
    """The app's context for a command that decides late whether it needs the app; nothing is
    pushed when one is already active (the caller's, or a test's)."""
    import contextlib

    from flask import current_app

    if current_app:
        return contextlib.nullcontext(current_app)
    ctx = ctx or click.get_current_context()
    return script_info(ctx).load_app().app_context()
