"""A shared cache in front of the app, in each web process, for the answers that every anonymous
reader gets alike: what a caching reverse proxy (nginx's proxy_cache) would keep for a second.

Why: `GET /api/v1/campaign` is the busiest request there is (every visit, every widget, every
refresh of a donor waiting for the total to move). Through Flask and its extensions it costs about
1.6 ms of a core; a stored answer costs a few microseconds. The README's hot-path section has the
figures.

What is stored is only ever an answer the app itself produced, and only when all of these hold:
- the path is one an API route declared `public=True` (api.route), the method is GET;
- the request carries no Cookie and no Authorization header (`anonymous`), so nothing about the
  reader (a session, a signed-in donor's language, a token) can be in the answer;
- the answer is a 200 with `Cache-Control: public, max-age=N` (the route sets it, N being
  FILMFUND_PUBLIC_CACHE_SECONDS), sets no cookie, and varies on nothing but the key below.

It is keyed on the path, the query string, the scheme, the host and Accept-Language (the answer's
language), and kept N seconds. Any commit of a write to the database in this process drops every
stored answer at once (and an answer asked while one commits is not kept: it may predate the write),
so this process's own writes show on its next answer; another process's (the
worker's booking of a donation) show within N seconds. At most MAX_ENTRIES answers are kept: a
stranger sending a new Accept-Language with each request only ever costs the uncached path.
"""
from __future__ import annotations

import threading
import time
import weakref
from typing import Callable, Iterable

import sqlalchemy as sa

MAX_ENTRIES = 256
_KEYED_VARY = {"accept-language", "cookie"}  # cookie: only requests without one are answered

Key = tuple[str, str, str, str, str]


def anonymous(environ: dict) -> bool:
    """No cookie and no credential: nothing in the request says who is asking."""
    return not environ.get("HTTP_COOKIE") and not environ.get("HTTP_AUTHORIZATION")


class _Stored:
    __slots__ = ("status", "headers", "body", "stored_at", "max_age")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes, stored_at: float, max_age: int):
        self.status, self.headers, self.body, self.stored_at, self.max_age = status, headers, body, stored_at, max_age


class SharedCache:
    """WSGI middleware: serves a stored public answer while it is fresh, else asks the app and
    stores what it may (see the module's docstring)."""

    def __init__(self, app: Callable, paths: Iterable[str] | set[str], clock: Callable[[], float] = time.monotonic):
        self.app = app
        self.paths = paths  # api.PUBLIC_PATHS: filled as routes are declared
        self.clock = clock
        self._stored: dict[Key, _Stored] = {}
        self._generation = 0  # counts the forgets: an answer asked before one is not kept after it
        self._lock = threading.Lock()
        _caches.add(self)

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._stored = {}

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if path not in self.paths or environ.get("REQUEST_METHOD") != "GET" or not anonymous(environ):
            return self.app(environ, start_response)
        key = (path, environ.get("QUERY_STRING", ""), environ.get("wsgi.url_scheme", ""),
               environ.get("HTTP_HOST", ""), environ.get("HTTP_ACCEPT_LANGUAGE", ""))
        stored = self._stored.get(key)
        now = self.clock()
        if stored is not None and now - stored.stored_at < stored.max_age:
            start_response(stored.status, [*stored.headers, ("Age", str(int(now - stored.stored_at)))])
            return [stored.body]
        return self._fetch(key, environ, start_response)

    def _fetch(self, key: Key, environ: dict, start_response: Callable):
        started, generation = self.clock(), self._generation
        answer: list = []

        def capture(status, headers, exc_info=None):
            answer[:] = [status, headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        body_iter = self.app(environ, capture)
        try:
            body = b"".join(body_iter)
        finally:
            close = getattr(body_iter, "close", None)
            if close is not None:
                close()
        max_age = _storable(*answer) if answer else 0
        if max_age:
            with self._lock:
                if generation != self._generation:  # a write committed meanwhile: this answer may predate it
                    return [body]
                if len(self._stored) >= MAX_ENTRIES:
                    self._stored.pop(next(iter(self._stored)), None)
                self._stored[key] = _Stored(answer[0], list(answer[1]), body, started, max_age)
        return [body]


def _storable(status: str, headers: list[tuple[str, str]]) -> int:
    """The seconds this answer may be kept (0: not at all)."""
    if not status.startswith("200 "):
        return 0
    max_age = 0
    public = False
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            return 0
        if lower == "vary" and not {v.strip().lower() for v in value.split(",")} <= _KEYED_VARY:
            return 0
        if lower == "cache-control":
            for directive in value.lower().split(","):
                directive = directive.strip()
                if directive == "public":
                    public = True
                elif directive in ("private", "no-store", "no-cache"):
                    return 0
                elif directive.startswith("max-age="):
                    try:
                        max_age = int(directive[8:])
                    except ValueError:
                        return 0
    return max_age if public and max_age > 0 else 0


_caches: weakref.WeakSet[SharedCache] = weakref.WeakSet()


_WROTE = "filmfund.shared_cache.wrote"


@sa.event.listens_for(sa.engine.Engine, "after_cursor_execute")
def _note_write(conn, _cursor, statement: str, _parameters, _context, _executemany) -> None:
    """Anything but a SELECT may have changed what a kept answer says (over-counting is harmless:
    the next answer is asked of the app). A read's commit (SQLite's autocommit reads) drops nothing."""
    if statement.lstrip()[:6].upper() != "SELECT":
        conn.info[_WROTE] = True


@sa.event.listens_for(sa.engine.Engine, "commit")
def _forget_on_commit(conn) -> None:
    """A write committed in this process: no kept answer may hide it."""
    if conn.info.pop(_WROTE, False):
        for cache in list(_caches):
            cache.forget()


@sa.event.listens_for(sa.engine.Engine, "rollback")
def _nothing_written(conn) -> None:
    """A connection the database dropped has no note to clear (its info went with it); reading
    `conn.info` there would make SQLAlchemy revalidate it, which raises in the middle of the
    rollback and leaves the session unusable."""
    if not conn.invalidated:
        conn.info.pop(_WROTE, None)
