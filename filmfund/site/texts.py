"""Translatable texts of the site's pages: Flask-Babel's gettext once the i18n component has set it
up on the app; until then the English text itself, formatted the same way."""
from __future__ import annotations

from flask import current_app

try:
    import flask_babel
except ImportError:  # pragma: no cover - the i18n component brings Flask-Babel
    flask_babel = None


def _babel_ready() -> bool:
    return flask_babel is not None and "babel" in current_app.extensions


def gettext(string: str, **variables) -> str:
    if _babel_ready():
        return flask_babel.gettext(string, **variables)
    return string % variables if variables else string


def lazy_gettext(string: str, **variables):
    if flask_babel is not None:
        return _Lazy(string, variables)
    return string % variables if variables else string


class _Lazy:
    """Translated when shown (a module-level label is made before any request has a language)."""

    def __init__(self, string: str, variables: dict):
        self.string, self.variables = string, variables

    def __str__(self) -> str:
        return gettext(self.string, **self.variables)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


_ = gettext
