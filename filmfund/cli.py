"""The `filmfund` console script: Flask's CLI with the app factory, plus run and worker."""
from __future__ import annotations

import logging
import os
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from filmfund import create_app


def _create_app(*_args, **_kwargs):
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False, set_debug_flag=False)
def main() -> None:
    """filmfund: the campaign, the ledger and the footage of an independent documentary."""


@main.command("run")
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000",
              help="0 picks a free port (printed).")
@click.option("--workers", type=int, default=1, show_default=True, help="Background worker threads.")
@click.option("--processes", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Web server processes sharing the port.")
@click.option("--threads", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Web server threads per process.")
@click.option("--debug", is_flag=True, help="Flask's development server with reloader (never in production).")
def run_command(host: str, port: int, workers: int, processes: int, threads: int, debug: bool) -> None:
    """Serve the site (waitress, --processes N) together with a background worker process.

    SIGTERM or SIGINT stops the web processes and the worker."""
    from filmfund import serving
    from filmfund.config import load_settings
    from filmfund.extensions import db

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    app = create_app({
        "SQLALCHEMY_ENGINE_OPTIONS": serving.engine_options(settings["SQLALCHEMY_ENGINE_OPTIONS"],
                                                            settings["SQLALCHEMY_DATABASE_URI"], threads),
        "RATELIMIT_STORAGE_URI": serving.ratelimit_storage(settings, processes),
    })
    _refuse_public_test_payments(app, host)
    serving.install_access_log(app)
    sock = None if debug else serving.bind(host, port)
    if sock is not None:
        port = sock.getsockname()[1]
    # Links in mail use FILMFUND_PUBLIC_URL; without it, the address this server answers on.
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    app.config["FALLBACK_PUBLIC_URL"] = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"
    mode = "  [TEST MODE payments]" if app.config["STRIPE_TEST_MODE"] else ""

    if debug:
        worker = serving.start_worker(workers)
        click.echo(f"filmfund on http://{host}:{port} (worker pid {worker.pid}){mode}")
        try:
            app.run(host=host, port=port, debug=True, use_reloader=False)
        finally:
            serving._stop_all(worker, [])
        return

    def dispose() -> None:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose(close=False)

    def ready(worker, web_pids) -> None:
        click.echo(f"filmfund on http://{host}:{port} (worker pid {worker.pid}, web pids "
                   f"{' '.join(map(str, web_pids))}){mode}")
        sys.stdout.flush()

    dispose()  # nothing opened before the fork is shared with the web processes
    serving.supervise(app, sock, processes=processes, threads=threads, workers=workers,
                      dispose=dispose, on_ready=ready)


def _refuse_public_test_payments(app, host: str) -> None:
    """Test payments (no Stripe key) only on loopback, unless FILMFUND_TEST_PAYMENTS=1: one line, exit 1."""
    from filmfund.config import check_test_payments

    refusal = check_test_payments(app.config, host)
    if refusal:
        raise click.ClickException(refusal)


@main.command("worker")
@click.option("--burst", is_flag=True, help="Process every queued job, then exit 0.")
@click.option("--workers", type=int, default=1, show_default=True)
@with_appcontext
def worker_command(burst: bool, workers: int) -> None:
    """Run a background worker for ingest, verify and transcode jobs."""
    from filmfund import jobs

    app = current_app._get_current_object()
    jobs.set_worker_app(app)
    recover = app.extensions.get("filmfund.recover_jobs")
    if recover:
        recover()  # re-queue what a dead worker left "running"
    if burst:
        count = jobs.run_burst()
        click.echo(f"ran {count} job(s)")
        return
    # An idle worker polls at most every 0.5 s (huey's default backs off to 10 s): a webhook stored
    # and answered by the web process is booked within a second, so the thank-you page shows it.
    consumer = jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                         check_worker_health=True, scheduler_interval=1, max_delay=0.5)
    consumer.run()


if __name__ == "__main__":
    main()
