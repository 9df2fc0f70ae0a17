"""The `filmfund` console script: Flask's CLI with the app factory, plus run and worker."""
from __future__ import annotations

import os
import signal
import subprocess
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
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="5000")
@click.option("--workers", type=int, default=1, show_default=True, help="Background worker threads.")
@click.option("--threads", type=int, default=8, show_default=True, help="Web server threads.")
@click.option("--debug", is_flag=True, help="Flask's development server with reloader (never in production).")
@with_appcontext
def run_command(host: str, port: int, workers: int, threads: int, debug: bool) -> None:
    """Serve the site (waitress) together with a background worker process."""
    app = current_app._get_current_object()
    # Links in mail use FILMFUND_PUBLIC_URL; without it, the address this server answers on.
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    app.config["FALLBACK_PUBLIC_URL"] = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}"
    worker = subprocess.Popen([sys.executable, "-m", "filmfund.cli", "worker", "--workers", str(workers)])
    click.echo(f"filmfund on http://{host}:{port} (worker pid {worker.pid})"
               + ("  [TEST MODE payments]" if app.config["STRIPE_TEST_MODE"] else ""))
    try:
        if debug:
            app.run(host=host, port=port, debug=True, use_reloader=False)
        else:
            from waitress import serve

            serve(app, host=host, port=port, threads=threads, ident="filmfund")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


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
    consumer = jobs.huey.create_consumer(workers=workers, worker_type="thread", periodic=True,
                                         check_worker_health=True, scheduler_interval=1)
    consumer.run()


if __name__ == "__main__":
    main()
