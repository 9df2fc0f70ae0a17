"""How the mail tasks of filmfund.comms are declared: their lane and retry policy, and the key huey
queues them by. Each is declared beside the use case that enqueues it (updates.deliver_update,
questions.notify_answer, invitations.mail_invitations, arrangements.notify_reply), so that no use
case imports a tasks module (which would import it back: an import cycle).

huey keys a task by "<module of its function>.<name>" and writes that key into every queued job and
every retry it schedules; a worker finds the task by it. These tasks were first declared in
filmfund.comms.tasks, so each passes that old key as `registered_as` (jobs.app_task): the jobs an
older version queued (an update's mailing is retried for hours) still find their task.
"""
from __future__ import annotations

from typing import Callable

from filmfund import jobs

RETRIES = 8
RETRY_DELAY = 60  # seconds before a failed task's first retry; doubled after each (retry_backoff)


def mail_task(registered_as: str) -> Callable:
    """A mail-lane task (ids in; it commits what it did), tried again after 1, 2, 4 ... minutes,
    up to RETRIES times, queued under the key `registered_as` ("filmfund.comms.tasks.<name>")."""
    return jobs.app_task(lane=jobs.mail, registered_as=registered_as, retries=RETRIES,
                         retry_delay=RETRY_DELAY, retry_backoff=2)
