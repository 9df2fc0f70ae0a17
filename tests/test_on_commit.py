"""What must follow a use case's commit (a task for the worker) runs on the caller's one commit,
and never after a rollback."""
from __future__ import annotations

import sqlalchemy as sa

from filmfund.db import on_commit
from filmfund.extensions import db


def test_an_action_runs_once_on_commit_and_is_forgotten_on_rollback(app):
    from filmfund.auth.models import User

    done: list[str] = []
    with app.app_context():
        db.session.add(User(email="kept@example.org"))
        on_commit(db.session, lambda: done.append("kept"))
        assert done == []  # nothing before the commit
        db.session.commit()
        assert done == ["kept"]
        db.session.commit()
        assert done == ["kept"]  # once

        db.session.add(User(email="dropped@example.org"))
        on_commit(db.session, lambda: done.append("dropped"))
        db.session.rollback()
        db.session.commit()
        assert done == ["kept"]
        emails = set(db.session.scalars(sa.select(User.email)))
        assert "kept@example.org" in emails and "dropped@example.org" not in emails


def test_a_savepoint_neither_runs_nor_forgets_what_was_registered_outside_it(app):
    from filmfund.auth.models import User

    done: list[str] = []
    with app.app_context():
        on_commit(db.session, lambda: done.append("before"))
        with db.session.begin_nested():  # released: not the commit
            db.session.add(User(email="inner@example.org"))
            on_commit(db.session, lambda: done.append("released"))
        assert done == []
        savepoint = db.session.begin_nested()
        on_commit(db.session, lambda: done.append("undone"))
        savepoint.rollback()  # forgets only what was registered inside it
        db.session.commit()
        assert done == ["before", "released"]
