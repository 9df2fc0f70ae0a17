"""The Flask class the app is built from (create_app)."""
from __future__ import annotations

from inspect import CO_COROUTINE
from types import FunctionType
from typing import Callable

from flask import Flask


class FilmfundFlask(Flask):
    """Flask, with the sync check of each hook made cheap.

    Flask asks `ensure_sync` of every hook and view it calls, ten a request here, and its answer
    goes through inspect.iscoroutinefunction (unwrapping methods and partials): about 1.5 µs
    each, 2% of a test-mode pledge's CPU. A plain function is a coroutine function by its code's
    flag alone, which is what that check finds for one; anything else (a method, a partial, a
    function marked by inspect.markcoroutinefunction) still goes through Flask's own."""

    def ensure_sync(self, func: Callable) -> Callable:
        if (type(func) is FunctionType and not func.__code__.co_flags & CO_COROUTINE
                and "_is_coroutine_marker" not in func.__dict__):
            return func
        return super().ensure_sync(func)
