"""Run the queue the way production does: `filmfund worker --burst`, in the test's process.

In production the web process stores and answers a webhook, and a worker books it from the
queue in its own app context and database session. `run_worker(app)` runs that command's own code
(`jobs.work_burst`: the worker's app, dead jobs re-queued, `jobs.run_burst`) in a fresh app
context, so the booking neither shares the test's session nor sees its uncommitted state.
`run_workers(app, n)` runs n of them at once, as `filmfund worker --workers n` does in threads.
"""
from __future__ import annotations

import threading

from filmfund import jobs
from filmfund.extensions import db


def run_worker(app) -> int:
    """Run every queued job (and every scheduled one already due) as a burst worker; returns how
    many ran. The test's own transaction is ended first, as a finished web request's is."""
    db.session.commit()
    with app.app_context():  # the worker's context: its own database session
        ran = jobs.work_burst(app)
    db.session.expire_all()  # the test reads what the worker committed
    return ran


def run_workers(app, n: int) -> int:
    """n burst workers draining the queue at once (threads, each in its own app context)."""
    db.session.commit()
    ran, errors, start = [], [], threading.Barrier(n)

    def work():
        try:
            with app.app_context():
                start.wait()
                ran.append(jobs.work_burst(app))
        except BaseException as exc:  # noqa: BLE001 - handed to the test below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    db.session.expire_all()
    return sum(ran)
