"""The updates' lists (the producers' and the donors' archive) name each update's audience from
one read of the campaign's rewards: the statements a list costs do not grow with its updates."""
from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

from filmfund.extensions import db
from tests.site.helpers import pay


@contextmanager
def sent():
    seen: list[str] = []

    def note(_conn, _cursor, stmt, *_a) -> None:
        seen.append(stmt)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)


def _statements(client, path: str) -> int:
    client.get(path)
    with sent() as seen:
        r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return len(seen)


def test_the_updates_lists_cost_the_same_statements_however_many_updates(app, client, login_as, producer):
    from filmfund.comms import updates
    from filmfund.auth.services import find_user

    pay(1500, "mei@example.org")  # the monthly updates' tier
    reader = find_user("mei@example.org")
    keys = ["updates-monthly", "donors", "wallpapers", "stills"]

    def write(n: int) -> None:
        for i in range(n):
            u = updates.create_update(title=f"Day {i}", body="Text.", audience=keys[i % len(keys)])
            updates.publish_update(u.id)
        db.session.commit()

    write(2)
    login_as(client, producer)
    few_admin = _statements(client, "/admin/updates")
    login_as(client, reader)
    few_archive = _statements(client, "/updates")
    write(8)
    login_as(client, producer)
    assert _statements(client, "/admin/updates") == few_admin
    login_as(client, reader)
    assert _statements(client, "/updates") == few_archive
