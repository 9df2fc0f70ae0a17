"""Extensions, created unbound and bound to the app in create_app (Flask's app-factory pattern)."""
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from filmfund.db import Base

db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
# The client address is the socket's own: X-Forwarded-For is not trusted unless a proxy is
# configured (FILMFUND_TRUSTED_PROXIES), so a spoofed header cannot dodge a limit.
# No X-RateLimit-* headers on every answer: each costs a second storage call (a Redis round trip
# on the pledge path); a refused request still says when to come back (Retry-After, errors.py).
limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False)


@contextmanager
def one_statement() -> Iterator[sa.Connection]:
    """The connection for a use case that is exactly one SQL statement (atomic by itself).

    Outside a transaction it runs in autocommit: PostgreSQL gets the statement alone, not BEGIN,
    the statement and COMMIT (one round trip instead of three, on the hot paths). Inside a
    transaction (a caller's unit of work, a test) it joins that transaction."""
    session = db.session()
    if session.in_transaction():
        yield session.connection()
        return
    conn = session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        yield conn
    finally:
        session.commit()  # nothing left to commit: hands the autocommit connection back to the pool
