"""Footage: ingest, fixity, diagnosis, transcoding and tracking of every clip."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing filmfund.media.cli (for its --help) does not load Flask
    from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund.media import api, cli, ffmpeg, models, screening, services, tasks, views  # noqa: F401  (models: tables; tasks: queue)
    from filmfund.rewards import signals

    ffmpeg.configure(app.config)
    # An erasure (rewards, a lower layer, sends it): the donor's viewings, flags and marked copies go.
    # Connecting again (each app built) changes nothing: blinker keeps one entry per receiver.
    signals.donor_erasing.connect(screening.erase_viewings)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.library_bp)
    api.init_app(app)
    app.cli.add_command(cli.media)
    # filmfund worker calls this at start: jobs a dead worker left "running" are re-queued.
    app.extensions["filmfund.recover_jobs"] = tasks.recover_work
    # The queued task (jobs.run_media_job) runs each job through this: runner.py imports jobs.py.
    app.extensions["filmfund.media.run_job"] = services.run_job
