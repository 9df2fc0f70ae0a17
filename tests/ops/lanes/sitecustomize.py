"""Loaded at start by every Python process of tests/ops/test_mail_lane.py (this folder is first on
their PYTHONPATH): two tasks the test enqueues into `filmfund run`'s embedded worker.

- `tests.hold_footage`: a footage-lane job that runs a real ffmpeg encode until the test releases
  it (a file appears), so the worker's only footage thread is busy for as long as the test needs.
- `tests.mail_public_link`: a mail-lane job that mails the base of worker-built links
  (filmfund.auth.services.public_base_url, called with no request, as receipts and updates are).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from filmfund import jobs


def _hold_footage(started: str, release: str, finished: str) -> None:
    encode = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                               "testsrc=size=320x240:rate=25", "-t", "300", "-c:v", "libx264", "-f", "null", "-"])
    Path(started).write_text(str(encode.pid))
    try:
        deadline = time.monotonic() + 300
        while not Path(release).exists() and encode.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        Path(finished).write_text("ffmpeg still running" if encode.poll() is None else "ffmpeg ended early")
    finally:
        encode.terminate()
        encode.wait()


def _mail_public_link(to: str) -> None:
    from filmfund.auth.services import public_base_url
    from filmfund.mail import send_mail

    send_mail(to, "worker link", f"base: {public_base_url()}\n")


# huey names a task by its module too: the same name here (sitecustomize) and in the test
# (which loads this file as another module).
for _fn in (_hold_footage, _mail_public_link):
    _fn.__module__ = "filmfund_test_lanes"
hold_footage = jobs.app_task(name="tests.hold_footage")(_hold_footage)
mail_public_link = jobs.app_task(lane=jobs.mail, name="tests.mail_public_link")(_mail_public_link)
