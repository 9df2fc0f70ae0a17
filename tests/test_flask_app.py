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


# ---------------------------------------------------------------- URL builders compiled on first use

SAMPLES = {"IntegerConverter": 7, "BoundedIntConverter": 7, "UnicodeConverter": "caf\u00e9 1", "PathConverter": "a/b c",
           "UUIDConverter": "0f8fad5b-d9cb-469f-a165-70867728950e", "AnyConverter": None}


def _values(rule) -> dict:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = converter.items[0] if kind == "AnyConverter" else SAMPLES.get(kind, "x")
    return values


def test_every_route_builds_the_url_werkzeug_builds(app):
    """Each rule of the app builds, at its first use, the URL werkzeug's own rule builds from the
    same values, with and without extra arguments (the query string), and keeps its compiled
    builder for the next time."""
    from werkzeug.routing import Map, Rule

    lazy = list(app.url_map.iter_rules())
    assert lazy and all(r._build.__name__ == "compile_then_build" for r in lazy if "_build" in r.__dict__)
    plain_map = Map([Rule(r.rule, endpoint=r.endpoint, methods=r.methods, defaults=r.defaults)
                     for r in lazy], converters=app.url_map.converters)
    checked = 0
    for rule in lazy:
        values = _values(rule)
        twin = next(r for r in plain_map.iter_rules() if r.rule == rule.rule and r.endpoint == rule.endpoint)
        for extra in ({}, {"lang": "zh-Hans", "page": 2}):
            assert rule.build({**values, **extra}) == twin.build({**values, **extra}), rule.rule
            assert rule.build(values, append_unknown=False) == twin.build(values, append_unknown=False)
        assert rule._build.__name__ != "compile_then_build" and rule._build_unknown.__name__ != "compile_then_build"
        checked += 1
    assert checked == len(lazy) > 100


def test_url_for_in_a_request_builds_with_its_query_string(app):
    from flask import url_for

    with app.test_request_context("/"):
        assert url_for("site.campaign", amount=50) == "/?amount=50"
        assert url_for("site.campaign", amount=50) == "/?amount=50"  # the compiled builder, kept
        assert url_for("static", filename="a b.css") == "/static/a%20b.css"
