"""How the mail tasks of filmfund.comms are declared: their retry policy, and the key huey queues
them by. With it a task can be declared beside the use case it runs, and the use case enqueues it
with no import of a tasks module (which imports the use case back: an import cycle).

huey keys a task by its function's module and name (`filmfund.comms.tasks.deliver_update`); a
queued job, and a retry huey has scheduled, carries that key, and a worker finds the task by it.
These tasks were first declared in filmfund.comms.tasks, so they keep that module in their key
wherever they are declared: the jobs an older version queued (an update's mailing is retried for
hours) still find their task. `name=` would not do it: huey puts the module before the name.
"""
from __future__ import annotations

from typing import Callable

from filmfund import jobs

RETRIES = 8
RETRY_DELAY = 60  # seconds before a failed task's first retry; doubled after each (retry_backoff)
KEYED_AS = "filmfund.comms.tasks"  # the module in the tasks' queued key (see above)


def mail_task(fn: Callable) -> Callable:
    """A mail-lane task (ids in; it commits what it did), tried again after 1, 2, 4 ... minutes,
    up to RETRIES times, and queued under its name in filmfund.comms.tasks."""
    fn.__module__ = KEYED_AS  # what huey keys it by (and functools.wraps copies into app_task's wrapper)
    return jobs.app_task(lane=jobs.mail, retries=RETRIES, retry_delay=RETRY_DELAY, retry_backoff=2)(fn)
