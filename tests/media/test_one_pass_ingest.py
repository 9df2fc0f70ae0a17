"""Issue 17, item 2: a clip's work overlaps its encode. The original is hashed as it is copied,
probed once; the check, proxy, poster and strip come from one decode; the proxy is written with
its index first in one pass; `media ingest --wait` runs the queue while it copies, with a bar per
card. Real ffmpeg on the 2 s fixtures."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
import sqlalchemy as sa

from filmfund.media import ffmpeg, readback

pytestmark = pytest.mark.one_database  # ffmpeg's work, not the database's (tests/conftest.py)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types, in file order."""
    names = []
    with open(path, "rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0]
                fh.seek(size - 16, 1)
            else:
                fh.seek(size - 8, 1)
            names.append(kind.decode("latin-1"))
    return names


def test_one_decode_one_probe_one_read(app, clips, tmp_path, drain, monkeypatch):
    from filmfund.media import ingest, services
    from filmfund.media.models import AssetState, Job, JobKind

    clip = tmp_path / "good_1080i.MTS"
    shutil.copy(clips / "good_1080i.MTS", clip)
    probed, decoded, encoded = [], [], []
    real_probe, real_checked, real_run = ffmpeg.probe, ffmpeg.checked_run, ffmpeg.run
    monkeypatch.setattr(ffmpeg, "probe", lambda spec, **k: probed.append(spec) or real_probe(spec, **k))
    monkeypatch.setattr(ffmpeg, "checked_run", lambda argv, **k: decoded.append(argv) or real_checked(argv, **k))
    monkeypatch.setattr(ffmpeg, "run", lambda argv, **k: encoded.append(argv) or real_run(argv, **k))

    def second_pass(*_a, **_k):
        raise AssertionError("the original was read a second time to hash it")

    monkeypatch.setattr(ingest, "sha256_file", second_pass)
    [result] = services.ingest_paths([clip])
    assert drain() == 1  # the verify job alone: its decode made every rendition
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.READY, asset.problems
    assert {r.kind.value for r in asset.renditions} == {"proxy", "poster", "strip"}
    assert [j.kind for j in app.extensions["sqlalchemy"].session.query(Job)] == [JobKind.VERIFY]

    # Fixity is still recorded: the source's SHA-256 is the one of the file's bytes.
    import hashlib

    assert asset.sources[0].sha256 == hashlib.sha256(clip.read_bytes()).hexdigest() == asset.sha256
    # The original is probed once (at ingest); the other probes read back the outputs.
    originals = [p for p in probed if not Path(p).name.startswith("job-")]
    assert originals == [str(clip)], probed
    # One ffmpeg run decodes the clip (check + proxy + poster + strip); nothing else runs on it.
    assert len(decoded) == 1 and encoded == decoded, (decoded, encoded)
    argv = " ".join(decoded[0])
    assert "showinfo" in argv and "tile=" in argv and "+faststart" not in argv and "-moov_size" in argv

    store = services.storage()
    with store.local_path(asset.rendition("proxy").storage_key, services.work_dir()) as proxy:
        boxes = top_level_boxes(proxy)
        info = ffmpeg.summarize(ffmpeg.probe(str(proxy)))
    # The index before the media, written in one pass (no faststart rewrite): players start at once.
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert abs(info.duration - asset.duration) < 0.3 and info.audio_codec == "aac"
    with store.local_path(asset.rendition("strip").storage_key, services.work_dir()) as strip:
        tiles = ffmpeg.summarize(ffmpeg.probe(str(strip)))
    assert (tiles.width, tiles.height) == (160 * 2, 90)  # 2 s: a grid of two (every 2 s), 160 px each


def test_damaged_take_is_still_named_and_not_given_renditions(app, clips, tmp_path, drain):
    from filmfund.media import services
    from filmfund.media.models import AssetState

    clip = tmp_path / "corrupt.MTS"
    shutil.copy(clips / "corrupt.MTS", clip)
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.state == AssetState.DAMAGED
    assert any(p["code"] in ("decode_errors", "missing_frames") for p in asset.problems), asset.problems
    assert asset.rendition("proxy") is None and asset.rendition("strip") is None


def test_web_rendition_has_its_index_first_and_plays_back(app, clips, tmp_path, drain, make_user, campaign_reward):
    from filmfund.extensions import db
    from filmfund.media import services

    clip = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", clip)
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    services.publish(asset, "digital-download", user=make_user(role="producer"))
    db.session.commit()
    assert drain() == 1
    asset = services.get_asset(asset.public_id)
    with services.storage().local_path(asset.rendition("web").storage_key, services.work_dir()) as web:
        boxes = top_level_boxes(web)
        info = ffmpeg.summarize(ffmpeg.probe(str(web)))
        # Decodes whole, as a player would read it from the start.
        report = ffmpeg.decode_pass(str(web), timeout=120)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    assert info.height == 180 and report.errors == 0 and report.frames >= 49


def test_the_index_room_grows_with_the_clip_and_unknown_lengths_are_rewritten():
    short = ffmpeg.MediaInfo(kind="video", duration=10, start_time=0, fps=25)
    hour = ffmpeg.MediaInfo(kind="video", duration=3600, start_time=0, fps=25)
    unknown = ffmpeg.MediaInfo(kind="video", duration=None, start_time=0, fps=25)
    assert ffmpeg.moov_first_args(short)["moov_size"] < ffmpeg.moov_first_args(hour)["moov_size"]
    # An hour at 25 fps: ~90,000 frames x ~16 bytes + sound; the room left is at least twice that.
    assert ffmpeg.moov_first_args(hour)["moov_size"] > 2 * (90_000 * 16 + 3600 * 400)
    assert ffmpeg.moov_first_args(unknown) == {"movflags": "+faststart"}


def test_ingest_wait_runs_the_queue_with_a_bar_per_card(app, runner, clips, tmp_path):
    from filmfund.media import avchd

    card = tmp_path / "CARD_A"
    stream = card / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM"
    stream.mkdir(parents=True)
    shutil.copy(clips / "good_1080i.MTS", stream / "00000.MTS")
    shutil.copy(clips / "small.mp4", tmp_path / "loose.mp4")
    playlist = card / "PRIVATE" / "AVCHD" / "BDMV" / "PLAYLIST"
    playlist.mkdir()
    (playlist / "00000.MPL").write_bytes(avchd.build_mpls([("00000", 1)]))
    result = runner.invoke(args=["media", "ingest", "--wait", str(card), str(tmp_path / "loose.mp4")])
    assert result.exit_code == 0, result.output
    states = [ln.split()[1] for ln in result.stdout.splitlines() if ln.strip()]
    assert states == ["ready", "ready"], result.output
    assert "ran 2 job(s)" in result.output
    # One bar per card (the card's name, and the folder of the loose file), each at 100%.
    bars = [ln for ln in result.output.splitlines() if "take)" in ln and "━" in ln]
    assert len(bars) == 2 and all("100%" in b for b in bars), result.output
    assert any(b.startswith("CARD_A") for b in bars)


def test_ingest_wait_runs_the_footage_and_leaves_mail_to_the_sites_worker(app, runner, clips, tmp_path, make_user):
    """The queue may be the site's (Redis in production): a sign-in link asked on the site waits
    in it for the site's worker, which has the site's mail server and address. `media ingest
    --wait`, typed in a shell that may have neither, runs its takes' jobs and not that mail."""
    from filmfund import jobs
    from filmfund.auth import links
    from filmfund.mail import outbox_messages

    make_user("waiting@example.org", "donor")
    jobs.flush()
    links.mail_link("waiting@example.org", links.SIGN_IN, "https://film.example.org")  # queued, as the site queues it
    assert jobs.mail.pending_count() == 1
    shutil.copy(clips / "small.mp4", tmp_path / "take.mp4")
    result = runner.invoke(args=["media", "ingest", "--wait", str(tmp_path / "take.mp4")])
    assert result.exit_code == 0, result.output
    assert [ln.split()[1] for ln in result.stdout.splitlines() if ln.strip()] == ["ready"], result.output
    assert "ran 1 job(s)" in result.output
    assert jobs.mail.pending_count() == 1 and not outbox_messages()
    assert jobs.run_burst() == 1  # the site's worker sends it
    assert [m for m in outbox_messages() if "waiting@example.org" in m.read_text()]


def test_ingest_wait_shows_each_bar_move_as_the_worker_reports(app, runner, clips, tmp_path, monkeypatch):
    """Off a terminal (this runner, a log, CI) each bar prints a line at every tenth of the way: the
    card's bar and the running job's own bar climb through the decode as the heartbeat reports
    it. ffmpeg reads the clip at half speed here, so the 2 s take's decode lasts seconds."""
    import re

    slow = tmp_path / "ffmpeg-half-speed"
    slow.write_text('#!/bin/sh\ncase " $* " in *" -progress "*) exec ffmpeg -readrate 0.5 "$@";; esac\n'
                    'exec ffmpeg "$@"\n')
    slow.chmod(0o755)
    monkeypatch.setattr(ffmpeg, "FFMPEG", str(slow))
    card = tmp_path / "CARD_B"
    stream = card / "PRIVATE" / "AVCHD" / "BDMV" / "STREAM"
    stream.mkdir(parents=True)
    shutil.copy(clips / "good_1080i.MTS", stream / "00000.MTS")
    result = runner.invoke(args=["media", "ingest", "--wait", str(card)])
    assert result.exit_code == 0, result.output
    card_steps = [int(m.group(1)) for m in re.finditer(r"^CARD_B \(1 take\): (\d+)%$", result.output, re.M)]
    job_steps = [int(m.group(1)) for m in re.finditer(r"^  .*: verify.*: (\d+)%$", result.output, re.M)]
    # The bars moved: several lines on the way, in order, up to the end.
    assert card_steps == sorted(card_steps) and card_steps[-1] == 100, result.output
    assert len([p for p in card_steps if 0 < p < 100]) >= 2, result.output
    assert job_steps == sorted(job_steps) and len([p for p in job_steps if 0 < p < 100]) >= 2, result.output
    assert "decode pass" in result.output and re.search(r"^copying and hashing: 100%$", result.output, re.M)


def test_stills_are_read_back_by_their_jpeg_structure(clips, tmp_path):
    still = tmp_path / "poster.jpg"
    argv = ffmpeg.image_argv(str(clips / "still.jpg"), str(still), {"height": 180})
    ffmpeg.run(argv, timeout=60)
    info = readback.read_jpeg(still)
    assert (info.width, info.height) == (320, 180)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(still.read_bytes()[:-100])  # a write that stopped early is not an output

    with pytest.raises(ffmpeg.FfmpegError):
        readback.read_jpeg(cut)


def test_a_clip_published_while_its_transcode_runs_gets_its_web_rendition(app, clips, tmp_path, drain, make_user,
                                                                          campaign_reward, monkeypatch):
    """The crew publishes a clip the moment it is ready, while a transcode of it still runs (its
    strip, a retry): the publish finds that job running and leaves the donors' copy to it, so the job
    must make it, though it chose its renditions when it started. Before, it did not: the trailer
    never reached the campaign page and donors never got the clip (a full CI run met it)."""
    from filmfund.extensions import db
    from filmfund.media import renditions, services

    clip = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", clip)
    [result] = services.ingest_paths([clip])
    drain()
    asset = services.get_asset(result.asset.public_id)
    producer = make_user(role="producer")
    renditions.retry(asset, "strip")  # a transcode of the ready clip, queued
    db.session.commit()
    real_render, published = renditions._render, []

    def publish_meanwhile(job, asset, *args, **kwargs):
        if not published:  # a producer's request, in the middle of the job's first rendition
            services.publish(services.get_asset(asset.public_id), "digital-download", user=producer)
            db.session.commit()
            published.append(True)
        return real_render(job, asset, *args, **kwargs)

    monkeypatch.setattr(renditions, "_render", publish_meanwhile)
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert published and asset.rendition("web") is not None, [r.kind.value for r in asset.renditions]
    assert asset.rendition("strip") is not None


@pytest.mark.parametrize("first", ["ingest", "retry"])
def test_a_clip_published_as_its_job_settles_gets_its_web_rendition(app, clips, tmp_path, drain, make_user,
                                                                    campaign_reward, monkeypatch, first):
    """The narrower window of the same race: the publish comes after the job's last look at what
    the asset wants (the clip is ready, the job's row still says running), the moment the
    campaign-page test publishes a clip once it is ready. The job's check, a loop on what is
    wanted, cannot see it; the job's settle must (a full CI run met it again: no trailer for three
    minutes). A web rendition that the job tried and failed is not queued again in a loop."""
    from filmfund.extensions import db
    from filmfund.media import renditions, runner, services
    from filmfund.media.models import Job, JobStatus

    clip = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", clip)
    producer = make_user(role="producer")
    published = []
    real_body = runner._transcode if first == "retry" else runner._verify

    def publish_after_the_body(job, beat):
        real_body(job, beat)
        if not published:
            services.publish(services.get_asset(job.asset.public_id), "digital-download", user=producer)
            db.session.commit()
            published.append(job.id)

    monkeypatch.setattr(runner, "_transcode" if first == "retry" else "_verify", publish_after_the_body)
    [result] = services.ingest_paths([clip])
    if first == "retry":
        drain()
        renditions.retry(services.get_asset(result.asset.public_id), "strip")
        db.session.commit()
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert published and asset.rendition("web") is not None, [r.kind.value for r in asset.renditions]
    jobs = db.session.scalars(sa.select(Job).where(Job.asset_id == asset.id).order_by(Job.id)).all()
    assert [j.status for j in jobs if j.id >= published[0]] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]


def test_a_web_rendition_that_failed_is_not_queued_again_by_the_settle(app, clips, tmp_path, drain, make_user,
                                                                        campaign_reward):
    """The settle queues only what no job has tried: a web rendition that its job tried and
    failed stays failed, with its retry button, and no job follows (no loop of failing jobs)."""
    from filmfund.extensions import db
    from filmfund.media import services
    from filmfund.media.models import Job, JobStatus, RenditionState

    app.config["MEDIA_PROFILE_OVERRIDES"]["web"] = {"preset": "no-such-preset"}  # ffmpeg refuses it
    clip = tmp_path / "small.mp4"
    shutil.copy(clips / "small.mp4", clip)
    [result] = services.ingest_paths([clip])
    drain()
    services.publish(services.get_asset(result.asset.public_id), "digital-download", user=make_user(role="producer"))
    db.session.commit()
    drain()
    asset = services.get_asset(result.asset.public_id)
    assert asset.rendition("web") is None and asset.rendition_state("web").state == RenditionState.FAILED
    jobs = db.session.scalars(sa.select(Job).where(Job.asset_id == asset.id)).all()
    assert len(jobs) == 2 and all(j.status == JobStatus.SUCCEEDED for j in jobs)  # the check, one transcode
