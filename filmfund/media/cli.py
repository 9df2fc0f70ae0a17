"""`filmfund media ingest`, `verify`, `retry`, `export` (timelines) and `bag` (BagIt archive bags)."""
from __future__ import annotations

import sys

import click

from filmfund.cli_app import app_context, needs_app

# Each command imports what it uses in its body: listing the commands, and `media ingest --wait` until
# it needs the app, load neither Flask nor SQLAlchemy (see cli_app.py).


@click.group("media")
def media() -> None:
    """Footage: ingest camera files and cards, re-check fixity, export timelines, bag cards, burn captions."""


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


def _table(rows: list[list[str]], headers: list[str]) -> str:
    """Columns padded by what a terminal shows (typed.columns: a Chinese title's characters take
    two columns each), so that a card named in Chinese keeps the table's columns straight."""
    from filmfund.typed import columns

    def pad(cell: str, width: int) -> str:
        return cell + " " * (width - columns(cell))

    widths = [max(columns(h), *(columns(r[i]) for r in rows)) if rows else columns(h) for i, h in enumerate(headers)]
    out = ["  ".join(pad(h, w) for h, w in zip(headers, widths)).rstrip(), "  ".join("-" * w for w in widths)]
    out += ["  ".join(pad(c, w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(out)


def _cut(text: str, width: int) -> str:
    """At most `width` columns, cut at a word when one is near, and marked as cut."""
    from filmfund.typed import columns

    if columns(text) <= width:
        return text
    kept = ""
    for ch in text:
        if columns(kept + ch) > width - 1:
            break
        kept += ch
    at_word = kept.rsplit(" ", 1)[0] if " " in kept[width // 2:] else kept
    return at_word.rstrip(" ,;:") + "…"


@media.command("ingest")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--title", help="Title of the asset (numbered when the paths hold several).")
@click.option("--wait", is_flag=True, help="Also run the queued jobs here and show the final states.")
def ingest_command(paths: tuple[str, ...], title: str | None, wait: bool) -> None:
    """Ingest files, folders or AVCHD card roots; queue the jobs; print each asset's id and state."""
    from pathlib import Path

    from filmfund.media import avchd

    skipped: list = []
    found = avchd.discover([Path(p) for p in paths], skipped)  # no app: nothing found, nothing built
    for s in skipped:  # symlinks (never followed out of the folder) and empty files
        click.echo(f"skipped {s.path}: {s.reason}", err=True)
    if not found:
        click.echo("0 asset(s): nothing to ingest" + (f", {len(skipped)} path(s) skipped." if skipped else "."),
                   err=True)
        return
    from filmfund.media import early, ffmpeg
    from filmfund.media.probing import probe_files

    settings = _settings_before_app()
    if not ffmpeg.configured:
        # No app yet: the probes and the early decode run the ffmpeg and ffprobe the app will run
        # (FILMFUND_FFMPEG, FILMFUND_FFPROBE, the decoders' limits), and the version each job
        # records (asked once, beside the probes) is that ffmpeg's.
        ffmpeg.configure(settings)
    probing = probe_files(f for group in found for f in group.files)  # ffprobe runs while the app is built
    if wait and len(found[0].files) == 1:
        # The first take's check and encode start now, while the app is built and the take is
        # copied (filmfund/media/early.py); its verify job claims them.
        early.start(found[0].files[0], probing[found[0].files[0]], settings)
        # The probe and ffmpeg's start are on the encode's critical path, building the app is not
        # (it is done long before the encode): it waits for them, for half a second at most.
        early.wait_until_begun(0.5)
    try:
        with app_context():
            _ingest(paths, found, skipped, title, wait, probing)
    except Exception as exc:
        from filmfund.errors import DomainError  # the app is built (or failed): Flask is imported already

        if isinstance(exc, DomainError):  # the storage unreachable, a bucket that does not exist ...
            raise click.ClickException(exc.message) from None
        raise
    finally:
        early.discard_all()


def _settings_before_app() -> dict:
    """The settings the app of this command has or will have: the caller's app's (Flask's test
    runner, an app already in context), else the environment's, which it will be built from."""
    from filmfund.config import load_settings

    if "flask" not in sys.modules:  # no app can be there yet, and importing Flask costs a fifth of a second
        return load_settings()
    from flask import current_app
    from flask.cli import ScriptInfo

    if current_app:
        return current_app.config
    info = click.get_current_context().find_object(ScriptInfo)
    return info.load_app().config if info is not None else load_settings()


def _ingest(paths: tuple[str, ...], found: list, skipped: list, title: str | None, wait: bool,
            probing: dict) -> None:
    from filmfund.media import services
    from filmfund.media.models import AssetState

    total = sum(f.stat().st_size for g in found for f in g.files)
    unread: list = []  # takes with a file that could not be read: named as each one fails

    def failed(s) -> None:
        unread.append(s)
        click.echo(f"skipped {s.path}: {s.reason}", err=True)

    committed: list = []  # printed as each is committed, so a run that stops still shows them
    unchecked = 0  # --wait: takes left unchecked because the queue could not be reached
    if wait:
        from filmfund.extensions import db

        try:
            results, unchecked = _ingest_and_run(paths, found, title, total, probing, failed,
                                                 lambda group, r: committed.append(r))
        except BaseException:
            for r in committed:  # the final states are not known: each as it was committed
                _echo_result(r)
            raise
        db.session.expire_all()
        for r in results:  # --wait: the states each take settled in
            _echo_result(r)
    else:
        with click.progressbar(length=total or 1, label="Copying and hashing", file=sys.stderr,
                               show_pos=False, show_percent=True, show_eta=True) as bar:
            results = services.ingest_paths(paths, title=title, progress=bar.update, discovered=found,
                                            probing=probing, on_skip=failed,
                                            on_result=lambda group, r: _echo_result(r))
    skipped = [*skipped, *unread]
    # The last column ("found as") whole: cut, "this intact copy repaired the da" lost its key word.
    rows = [[r.asset.public_id, r.asset.state.value, r.asset.kind.value, _cut(r.asset.title, 40),
             str(len(r.asset.sources)), f"{r.asset.duration:.1f} s" if r.asset.duration else "-",
             _human(r.asset.size), "new" if r.created else "known", r.how] for r in results]
    click.echo("", err=True)
    click.echo(_table(rows, ["id", "state", "kind", "title", "files", "duration", "size", "ingest", "found as"]),
               err=True)
    new = sum(r.created for r in results)
    click.echo(f"{len(results)} asset(s): {new} new, {len(results) - new} already known"
               + (f", {len(skipped)} path(s) skipped." if skipped else "."), err=True)
    if unread:
        click.echo(f"{len(unread)} take(s) not ingested: a file could not be read (listed above).", err=True)
    # --wait knows how each take ended: a copy script learns from the exit status that one is not
    # intact (without --wait the checks have not run yet: `media verify` says it later).
    bad = [r for r in results if wait and r.asset.state in (AssetState.DAMAGED, AssetState.FAILED)]
    if bad:
        click.echo(f"{len(bad)} take(s) damaged or failed (their problems are listed above; "
                   f"`filmfund media verify ID` says them again).", err=True)
    if unread or bad or unchecked:
        sys.exit(1)


def _echo_result(r) -> None:
    """An asset's id and state on stdout; what is wrong with it on stderr (a part of the take
    missing from the copy is known at ingest, damage once the take is checked)."""
    click.echo(f"{r.asset.public_id} {r.asset.state.value}")
    for p in r.asset.problems or []:
        if p.get("severity") != "info":
            click.echo(f"  {p.get('code')}: {p.get('message', '')[:300]}", err=True)


def _recover_dead_work() -> list:
    """Recover what a dead worker left (tasks.recover_work: the one home of recovery, the
    reaper's and `filmfund worker`'s) before a command looks at a job, and say each job it
    re-queued on stderr. The jobs re-queued."""
    from filmfund.extensions import db
    from filmfund.media import tasks

    found: list = []
    try:
        tasks.recover_work(at_start=False, found=found)
        for job in found:
            click.echo(f"job {job.id} ({job.kind.value} of {job.asset.public_id}): {job.error}", err=True)
    finally:
        # Its transaction ends here: left open across the whole `ingest --wait`, it would keep
        # an old view of the jobs (and keep SQLite from checkpointing its log meanwhile).
        db.session.commit()
    return found


def _card_label(group) -> str:
    from filmfund.media.ingest import _card_name

    if group.card is not None:
        return _card_name(group.card)
    return group.files[0].parent.name or "files"


def _ingest_and_run(paths: tuple[str, ...], found: list, title: str | None, total: int, probing: dict,
                    on_skip, on_result) -> tuple[list, int]:
    """`--wait`: the footage queue runs on a thread here, as a worker runs it, from the first clip
    on: a clip is checked and encoded while the next one is copied. One bar per card follows its
    takes through their jobs (each job's own percentage, live), one bar the copying, and one bar
    per running job (its take, kind, step and percentage, as its heartbeat reports it). Returns
    the results, and how many takes were left unchecked because the queue could not be reached.

    On a terminal the bars redraw in place (rich); elsewhere (a log, CI, a pipe) each bar prints
    a line at every tenth of the way, so the progress shows there too."""
    import threading
    import time

    import sqlalchemy as sa
    from flask import current_app
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from filmfund import jobs
    from filmfund.db import utcnow
    from filmfund.extensions import db
    from filmfund.media import early, services
    from filmfund.media.jobs import RUNNING
    from filmfund.media.models import Asset, AssetState, Job, JobStatus

    app = current_app._get_current_object()
    settled_states = (AssetState.READY, AssetState.DAMAGED, AssetState.FAILED)
    takes: dict[str, int] = {}
    for group in found:
        takes[_card_label(group)] = takes.get(_card_label(group), 0) + 1
    card_of: dict[int, str] = {}      # asset id -> its card
    progress: dict[int, float] = {}   # asset id -> 0..1 (1: settled)
    lock = threading.Lock()

    def settle() -> None:  # after each task: which takes are done, and how far the others' jobs are
        with lock:
            open_ids = [a for a, p in progress.items() if p < 1]
        if not open_ids:
            return
        with app.app_context():
            rows = db.session.execute(sa.select(Asset.id, Asset.state).where(Asset.id.in_(open_ids))).all()
            # A job another worker runs (the site's own, on the same queue) reports through its row.
            running = db.session.execute(sa.select(Job.asset_id, sa.func.max(Job.progress)).where(
                Job.asset_id.in_(open_ids), Job.status == JobStatus.RUNNING).group_by(Job.asset_id)).all()
            db.session.remove()
        with lock:
            for asset_id, state in rows:
                if state in settled_states:
                    progress[asset_id] = 1.0
            for asset_id, share in running:
                if progress[asset_id] < 1 and share is not None:
                    progress[asset_id] = max(progress[asset_id], min(0.99, float(share)))

    def others_running() -> bool:
        """A take not settled yet whose job runs now, or is due now (a retry later is not waited for)."""
        with lock:
            open_ids = [a for a, p in progress.items() if p < 1]
        if not open_ids:
            return False
        with app.app_context():
            found = db.session.scalar(sa.select(sa.exists().where(
                Job.asset_id.in_(open_ids), sa.or_(Job.status == JobStatus.RUNNING, sa.and_(
                    Job.status == JobStatus.QUEUED, Job.next_run_at <= utcnow())))))
            db.session.remove()
        return bool(found)

    titles: dict[int, str] = {}

    def registered(group, result) -> None:
        on_result(group, result)
        if not result.created:  # known already: its early decode, if any, is not needed
            early.discard(group.files[0])
        with lock:
            card_of[result.asset.id] = _card_label(group)
            titles[result.asset.id] = result.asset.title
            # A take known already but not settled (its job re-queued from a dead worker, or
            # running in another one) is waited for too: --wait means every take settled.
            progress[result.asset.id] = 0.0 if result.created or result.asset.state not in settled_states else 1.0

    # Two refreshes a second: the bars share the two cores with the encode they report on.
    console = Console(stderr=True)
    bars = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, refresh_per_second=2)
    copying = bars.add_task("copying and hashing", total=total or 1)
    per_card = {label: bars.add_task(f"{label} ({n} take{'s' if n != 1 else ''})", total=n * 100)
                for label, n in takes.items()}
    per_job: dict[int, int] = {}  # job id -> its bar while it runs
    printed: dict[int, int] = {}  # off a terminal: task id -> the last tenth printed
    stop = threading.Event()

    def line(task_id: int) -> None:
        """Off a terminal: one line each time a bar passes another tenth."""
        if console.is_terminal:
            return
        task = next(t for t in bars.tasks if t.id == task_id)
        tenth = int(10 * task.completed / (task.total or 1))
        if tenth > printed.get(task_id, -1):
            printed[task_id] = tenth
            click.echo(f"{task.description}: {int(100 * task.completed / (task.total or 1))}%", err=True)

    def show() -> None:
        with lock:
            running = list(RUNNING.values())
            for beat in running:  # the running job's own percentage
                if beat.asset_id in progress and progress[beat.asset_id] < 1 and beat.progress is not None:
                    progress[beat.asset_id] = max(progress[beat.asset_id], min(0.99, beat.progress))
            done = {label: 0.0 for label in per_card}
            for asset_id, p in progress.items():
                done[card_of[asset_id]] += p * 100
            names = dict(titles)
        for label, task in per_card.items():
            bars.update(task, completed=done[label])
            line(task)
        line(copying)
        live = {beat.job_id for beat in running}
        for beat in running:
            what = f"  {names.get(beat.asset_id, 'take')}: {beat.kind or 'job'}"
            if beat.job_id not in per_job:
                per_job[beat.job_id] = bars.add_task(what, total=100)
            task = per_job[beat.job_id]
            bars.update(task, description=what + (f" ({beat.step})" if beat.step else ""),
                        completed=100 * min(1.0, beat.progress or 0.0))
            line(task)
        for job_id in [j for j in per_job if j not in live]:  # ended: full, then gone from the screen
            task = per_job.pop(job_id)
            bars.update(task, completed=100)
            line(task)
            bars.remove_task(task)

    def keep_showing() -> None:
        while not stop.wait(0.5):
            show()

    shower = threading.Thread(target=keep_showing, name="ingest-progress", daemon=True)
    # What a killed `ingest --wait` (or worker) left running is re-queued here and run by this
    # command's queue below; its temporary files go. Asked again while waiting: a job whose
    # worker was killed seconds ago is taken over once it has missed two heartbeats.
    _recover_dead_work()
    with bars:
        shower.start()
        try:
            # The footage lane only (jobs.FOOTAGE_ONLY): mail and payments wait for the site's worker.
            with jobs.QueueDriver(app, after_task=settle, lanes=jobs.FOOTAGE_ONLY) as driver:
                results = services.ingest_paths(paths, title=title, progress=lambda n: bars.advance(copying, n),
                                                discovered=found, on_result=registered, probing=probing,
                                                on_skip=on_skip)
            settle()
            # The queue is shared: a running site's worker may have taken some of these takes'
            # jobs. --wait means every take settled, so wait for those too, and run the footage
            # queued meanwhile as the driver did. Bounded: a job that moves no further for the stale
            # limit is another worker's to recover, and the summary names the take's state.
            quiet_limit = app.config.get("MEDIA_STALE_SECONDS", 120)
            last_move, seen = time.monotonic(), None
            recover_every, last_recovery = app.config["MEDIA_HEARTBEAT_SECONDS"], time.monotonic()
            lost = None  # the queue's fault, once a run of the queue here finds it unreachable
            while lost is None and others_running() and time.monotonic() - last_move < quiet_limit:
                time.sleep(0.5)
                if time.monotonic() - last_recovery >= recover_every:
                    last_recovery = time.monotonic()
                    with app.app_context():
                        if _recover_dead_work():
                            last_move = time.monotonic()
                        db.session.remove()
                try:
                    driver.ran += jobs.run_burst(lanes=jobs.FOOTAGE_ONLY)
                except jobs.QUEUE_FAULTS as exc:  # said below, once
                    lost = exc
                settle()
                with lock:
                    now_seen = sorted(progress.items())
                if now_seen != seen:
                    last_move, seen = time.monotonic(), now_seen
        finally:
            stop.set()
            shower.join()
            show()
    click.echo(f"ran {driver.ran} job(s)", err=True)
    with lock:
        unsettled = sum(p < 1 for p in progress.values())
    lost = lost or driver.lost
    if lost is None:
        return results, 0
    if unsettled:
        # The copies are kept and hashed (the card can be put away); what is left is the checks and
        # the proxies, whose jobs wait in their rows for a worker once the queue is back.
        click.echo(f"the work queue cannot be reached (FILMFUND_QUEUE_URL: {lost}): {unsettled} take(s) copied "
                   f"and hashed, not checked yet; their jobs run once it is back (`filmfund worker`, or "
                   f"`filmfund media ingest --wait` again).", err=True)
    return results, unsettled


@media.command("retry")
@click.argument("asset_id")
@click.option("--kind", help="One rendition to make again (proxy, web, poster, strip, image); default: the failed or missing ones.")
@needs_app
def retry_command(asset_id: str, kind: str | None) -> None:
    """Queue an asset's failed or missing renditions again (the asset page has the same button)."""
    from filmfund.errors import DomainError
    from filmfund.extensions import db
    from filmfund.media import services

    try:
        asset = services.get_asset(asset_id)
    except DomainError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    recovered = [j for j in _recover_dead_work() if j.asset_id == asset.id]
    if recovered:  # its work was stuck with a dead worker: queued again, which is what a retry does
        job = recovered[0]
        click.echo(f"{asset_id} queued again (job {job.id}, {job.kind.value}): its worker had stopped; "
                   f"{_RUN_QUEUED}")
        return
    try:
        job = services.retry_renditions(asset, kind)
        db.session.commit()  # the job is queued once committed
    except DomainError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    click.echo(f"{asset_id} queued (job {job.id}); {_RUN_QUEUED}")


# Commands that work with a queued job's queue message, whatever the instance runs.
_RUN_QUEUED = ("`filmfund worker --burst` runs it now (a running `filmfund run` or `filmfund worker` "
               "takes it by itself)")


@media.command("verify")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every asset.")
@click.option("--no-repair", is_flag=True, help="Only check: do not rewrite anything from the other copy.")
@click.option("--bag", "bags", multiple=True, metavar="PATH|s3://...",
              help="Check an archive bag instead (from `filmfund media bag`): every file against its manifest.")
def verify_command(ids: tuple[str, ...], all_: bool, no_repair: bool, bags: tuple[str, ...]) -> None:
    """Re-check fixity (both copies) and report it and the asset's state, separately.

    One line per asset: `ID fixity=ok|repaired|FAILED state=STATE [missing=KINDS] [job=REQUEUED]
    [second_copy=FAILED]`. A ready asset whose rendition is being made again (a damaged proxy
    dropped) reads `state=remaking missing=proxy`, not ready. First, work a dead worker left
    running is recovered (re-queued, its temporary files removed), as the worker's reaper does:
    such an asset has `job=REQUEUED`. Exit 1 if any asset's fixity fails, its state is damaged
    or failed (a clip that was damaged when it arrived is intact in storage, and still not
    usable), its second copy cannot be made whole, or its job was stuck with a stopped worker."""
    if bags:
        if ids or all_:
            raise click.UsageError("--bag checks bags; check assets in another run.")
        with app_context():
            _verify_bags(bags)
        return
    if not ids and not all_:
        raise click.UsageError("Name asset ids or use --all.")
    with app_context():
        _verify(ids, all_, no_repair)


def _verify_bags(locations: tuple[str, ...]) -> None:
    """One line per bag, `LOCATION bag=valid|INVALID files=N`, then each damaged, missing or
    unexpected file by name; exit 1 if any bag is not valid."""
    from filmfund.media import bags

    bad = 0
    with _bag_bars() as progress:
        checks = [bags.verify(loc, progress=progress) for loc in locations]
    for check in checks:
        click.echo(f"{check.location} bag={'valid' if check.ok else 'INVALID'} files={check.files}")
        for path in check.damaged:
            click.echo(f"  damaged: {path}", err=True)
        for path in check.missing:
            click.echo(f"  missing: {path}", err=True)
        for path in check.unexpected:
            click.echo(f"  not in the manifest: {path}", err=True)
        if check.error:
            click.echo(f"  {check.error}", err=True)
        bad += not check.ok
    if bad:
        sys.exit(1)


def _bag_bars():
    """A rich bar per step of a bag (copying, checksumming, uploading, reading back), in bytes."""
    import contextlib

    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                               TimeRemainingColumn)

    @contextlib.contextmanager
    def bars():
        tasks: dict[str, int] = {}
        with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=Console(stderr=True), refresh_per_second=4) as shown:
            def progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = shown.add_task(step, total=total or 1)
                shown.update(tasks[step], completed=done, total=total or 1)

            yield progress

    return bars()


def _verify(ids: tuple[str, ...], all_: bool, no_repair: bool) -> None:
    from filmfund.errors import NotFoundError
    from filmfund.media import services
    from filmfund.media.common import REQUIRED
    from filmfund.media.models import AssetState

    stuck = {job.asset_id: job for job in _recover_dead_work()}  # asset id -> its job re-queued
    try:
        results = services.check_fixity(None if all_ else list(ids), repair=not no_repair)
    except NotFoundError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    active = services.active_jobs([r.asset for r in results])
    bad_states = (AssetState.DAMAGED, AssetState.FAILED)
    fixity_bad = state_bad = second_bad = stuck_bad = 0
    for r in results:
        fixity = "FAILED" if not r.ok else ("repaired" if r.repaired else "ok")
        state = r.asset.state.value
        remade = _being_remade(r.asset)
        if r.asset.state == AssetState.READY and set(remade) & {k.value for k in REQUIRED[r.asset.kind]}:
            state = "remaking"  # not "ready": the clip has no proxy (an image no image) until it is made
        job, was_stuck = active.get(r.asset.id), r.asset.id in stuck
        click.echo(f"{r.asset.public_id} fixity={fixity} state={state.upper() if r.asset.state in bad_states else state}"
                   + (f" missing={','.join(remade)}" if remade else "")
                   + (" job=REQUEUED" if was_stuck else "")
                   + (" second_copy=FAILED" if r.second_copy else ""))
        if was_stuck:
            click.echo(f"  job {stuck[r.asset.id].id} ({stuck[r.asset.id].kind.value}) was stuck \"running\" with a "
                       f"stopped worker; re-queued: {_RUN_QUEUED}", err=True)
        if remade:
            how = (f"job {job.id} ({job.status.value})" if job is not None else
                   "no job: `filmfund media retry ID` queues one")
            click.echo(f"  {', '.join(remade)}: missing, being made again "
                       f"from the intact originals by {how}"
                       + (f"; {_RUN_QUEUED}" if job is not None and job.status.value == "queued" else ""), err=True)
        stuck_bad += was_stuck
        for failure in r.failures:
            click.echo(f"  fixity: {failure}", err=True)
        for failure in r.second_copy:
            click.echo(f"  second copy: {failure}", err=True)
        for done in r.repaired:
            click.echo(f"  repaired: {done}", err=True)
        # A part of a take since ingested whole (ingest._supersede_parts): the whole take is the
        # asset to use, checked on its own line; the part's damage (a take cut mid-picture-group
        # decodes with errors at its end) is said, not counted, or verify --all fails for good.
        superseded = r.asset.superseded_by
        if r.asset.state in bad_states:
            for p in r.asset.problems or []:
                if p.get("severity") not in ("info", "warning", "alert"):
                    click.echo(f"  {state}: {p.get('message', '')[:300]}", err=True)
            if superseded:
                click.echo(f"  superseded by {superseded}, the whole take: not counted as damaged", err=True)
        fixity_bad += not r.ok
        state_bad += r.asset.state in bad_states and not superseded
        second_bad += bool(r.second_copy)
    click.echo(f"{len(results)} asset(s) checked: fixity failed for {fixity_bad}, "
               f"{state_bad} damaged or failed"
               + (f", the second copy failed for {second_bad}" if second_bad else "")
               + (f", {stuck_bad} stuck with a stopped worker (re-queued)" if stuck_bad else "") + ".", err=True)
    if fixity_bad or state_bad or second_bad or stuck_bad:
        sys.exit(1)


def _being_remade(asset) -> list[str]:
    """The renditions a ready asset should have, lacks, and is making again (marked pending or
    running: a damaged one the fixity check dropped and queued), by kind."""
    from filmfund.media.models import RenditionState
    from filmfund.media.renditions import wanted_kinds

    out = []
    for kind in wanted_kinds(asset):
        row = asset.rendition_state(kind)
        if asset.rendition(kind) is None and row is not None and row.state in (RenditionState.PENDING,
                                                                                RenditionState.RUNNING):
            out.append(kind.value)
    return out


@media.command("export")
@click.argument("ids", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["fcpxml", "fcp7xml", "edl", "otio"]), required=True,
              help="fcp7xml: Resolve, Premiere; fcpxml: Final Cut; edl: CMX 3600; otio: OpenTimelineIO JSON.")
@click.option("--card", help="Only the clips of this card (its folder's name).")
@click.option("--name", "timeline_name", default="filmfund", show_default=True, help="The timeline's name.")
@click.option("--url-hours", type=click.IntRange(1, 168), default=24, show_default=True,
              help="On S3, how long the proxies' signed URLs last (at most 7 days).")
def export_command(ids: tuple[str, ...], fmt: str, card: str | None, timeline_name: str, url_hours: int) -> None:
    """A timeline of the given clips (default: every ready video) for an editor, to stdout.

    Made with OpenTimelineIO: the clips in recording order, each with its reel (card and file
    name), the camera's timecode, its rate and the path or signed URL of its edit proxy."""
    with app_context():
        from filmfund.audit import record_audit
        from filmfund.errors import DomainError
        from filmfund.extensions import db
        from filmfund.media import timeline

        try:
            infos = timeline.select(list(ids) or None, card)
            text = timeline.export(infos, fmt, name=timeline_name, url_ttl=url_hours * 3600)
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        record_audit("export.timeline", f"media:{len(infos)} clip(s)",
                     {"format": fmt, "card": card, "assets": [i.asset.public_id for i in infos]})
        db.session.commit()
    click.echo(text, nl=not text.endswith("\n"))
    click.echo(f"{len(infos)} clip(s) exported as {fmt}.", err=True)


@media.command("bag")
@click.argument("ids", nargs=-1)
@click.option("--to", "to", required=True, metavar="PATH|s3://BUCKET/PREFIX",
              help="A folder that does not exist yet (or is empty), or an empty S3 prefix.")
@click.option("--card", help="Also every asset of this card (its folder's name).")
def bag_command(ids: tuple[str, ...], to: str, card: str | None) -> None:
    """An archive bag (BagIt, valid by the `bagit` library) of the assets' originals, their card
    structure files and a manifest of what filmfund knows of them (checksums, recording dates,
    camera, problems). Nothing is left behind if it fails."""
    if not ids and not card:
        raise click.UsageError("Name asset ids or a --card.")
    with app_context():
        from filmfund.audit import record_audit
        from filmfund.errors import DomainError
        from filmfund.extensions import db
        from filmfund.media import bags

        try:
            assets = bags.select(list(ids), card)
            with _bag_bars() as progress:
                result = bags.make(assets, to, progress=progress)
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        record_audit("export.bag", result.location[:300], {"assets": result.assets, "files": result.files,
                                                            "bytes": result.bytes})
        db.session.commit()
    click.echo(f"{result.location} bag=valid files={result.files} assets={len(result.assets)}")
    click.echo(f"{_human(result.bytes)} of originals bagged and validated.", err=True)


@media.command("burn")
@click.argument("asset_id")
@click.option("--lang", required=True, help="The captions' language (BCP 47), e.g. zh-Hans.")
def burn_command(asset_id: str, lang: str) -> None:
    """Burn one language's final captions into the clip's donor copy (the asset page has the same button)."""
    with app_context():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

        from filmfund.audit import record_audit
        from filmfund.errors import DomainError
        from filmfund.extensions import db
        from filmfund.media import burnin, services
        from filmfund.media.ffmpeg import FfmpegError

        try:
            asset = services.get_asset(asset_id)
            with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), refresh_per_second=2) as bars:
                task = bars.add_task(f"burning {lang} captions", total=1.0)
                caption = burnin.burn(asset, lang, progress=lambda p: bars.update(task, completed=p))
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except FfmpegError as exc:
            click.echo(f"error: ffmpeg failed: {exc}", err=True)
            sys.exit(1)
        record_audit("media.captions_burned", f"asset:{asset.public_id}", {"lang": caption.lang})
        db.session.commit()
    click.echo(f"{asset_id} {caption.lang} burned={caption.burn_state} size={caption.burned_size or 0}")


@media.command("whois")
@click.argument("code")
@needs_app
def whois_command(code: str) -> None:
    """Name the donor whose mark is CODE (read off a leaked copy of an early-access screening)."""
    from filmfund.audit import record_audit
    from filmfund.extensions import db
    from filmfund.media import screening

    user = screening.whois(code)
    record_audit("media.whois", f"mark {code.strip().upper()[:16]}", {"found": user is not None})
    db.session.commit()
    if user is None:
        click.echo(f"no account has the mark {code.strip().upper()}", err=True)
        sys.exit(1)
    click.echo(f"{screening.mark_code(user.public_id)}\t{user.email}")


@media.command("purge-viewings")
@needs_app
def purge_viewings_command() -> None:
    """Delete viewings older than FILMFUND_MEDIA_VIEWING_DAYS and marked segments not read for two days."""
    from filmfund.extensions import db
    from filmfund.media import screening

    n = screening.purge_viewings()
    db.session.commit()
    click.echo(f"purged {n} viewing(s), {screening.sweep_mark_cache()} marked segment(s)")
