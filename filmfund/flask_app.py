"""The Flask class the app is built from (create_app)."""
from __future__ import annotations

from inspect import CO_COROUTINE
from types import FunctionType
from typing import Callable

from flask import Flask
from werkzeug.routing import Rule


class LazyBuilderRule(Rule):
    """A URL rule whose URL builders are compiled when a URL is first built from it.

    Werkzeug compiles two builder functions (generated Python source, then `compile`) for every
    rule as the rule is added: adding this app's 172 rules cost 65-83 ms of CPU, 7 ms without,
    in every process that builds the app (each command line, the worker, the ingest that shares
    the cores with its encode: issue 17), though most of them build no URL and the web builds a
    few dozen. The matching part is compiled as before; each builder is compiled at its first use,
    then replaces the stand-in (two threads racing compile the same function twice, harmlessly)."""

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        name = "_build_unknown" if append_unknown else "_build"

        def compile_then_build(rule: Rule, **values):
            built = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, name, built)
            return built(**values)

        return compile_then_build


class FilmfundFlask(Flask):
    """Flask, with the sync check of each hook made cheap and URL builders compiled on first use.

    Flask asks `ensure_sync` of every hook and view it calls, ten a request here, and its answer
    goes through inspect.iscoroutinefunction (unwrapping methods and partials): about 1.5 µs
    each, 2% of a test-mode pledge's CPU. A plain function is a coroutine function by its code's
    flag alone, which is what that check finds for one; anything else (a method, a partial, a
    function marked by inspect.markcoroutinefunction) still goes through Flask's own."""

    url_rule_class = LazyBuilderRule

    def ensure_sync(self, func: Callable) -> Callable:
        if (type(func) is FunctionType and not func.__code__.co_flags & CO_COROUTINE
                and "_is_coroutine_marker" not in func.__dict__):
            return func
        return super().ensure_sync(func)
