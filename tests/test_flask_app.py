"""FilmfundFlask.ensure_sync answers as Flask's own does, for every kind of callable a hook or a
view can be."""
from __future__ import annotations

import inspect
from functools import partial, wraps

import pytest
from flask import Flask

from filmfund.flask_app import FilmfundFlask


def plain():
    return "plain"


async def coroutine():
    return "coroutine"


class Hooks:
    def method(self):
        return "method"

    async def async_method(self):
        return "async method"


def _marked():
    return "marked"


def _wrapped_coroutine():
    @wraps(coroutine)
    def wrapper():
        return coroutine()
    return wrapper


CALLABLES = {
    "plain function": plain,
    "lambda": lambda: "lambda",
    "coroutine function": coroutine,
    "method": Hooks().method,
    "async method": Hooks().async_method,
    "partial of a coroutine function": partial(coroutine),
    "partial of a plain function": partial(plain),
    "a sync wrapper of a coroutine function (functools.wraps)": _wrapped_coroutine(),
    "builtin": len,
}
if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
    CALLABLES["a function marked as a coroutine function"] = inspect.markcoroutinefunction(_marked)


def _answer(app: Flask, func):
    try:
        return ("same", None) if app.ensure_sync(func) is func else ("wrapped", None)
    except RuntimeError as error:  # no asgiref installed: Flask refuses an async function
        return ("refused", type(error))


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_ensure_sync_answers_as_flask_does(name):
    func = CALLABLES[name]
    assert _answer(FilmfundFlask(__name__), func) == _answer(Flask(__name__), func)


def test_an_async_function_is_never_passed_through_as_sync():
    assert _answer(FilmfundFlask(__name__), coroutine)[0] != "same"
    assert _answer(FilmfundFlask(__name__), Hooks().async_method)[0] != "same"
