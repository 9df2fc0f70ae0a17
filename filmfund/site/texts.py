"""Translatable texts of the site's pages: Flask-Babel's gettext (set up by filmfund/i18n.py)."""
from __future__ import annotations

from flask_babel import gettext, lazy_gettext

_ = gettext

__all__ = ["_", "gettext", "lazy_gettext"]
