"""`filmfund media ingest`, as a crew types it in a fresh process, runs the ffmpeg and ffprobe its
settings name (FILMFUND_FFMPEG, FILMFUND_FFPROBE: a build of ffmpeg of their own, the system's
too old or missing) from its first probe on, before it builds the app, and each job records that
ffmpeg's version. Those on the PATH are stubs here that fail and say so: a run of the defaults is
seen."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = "ffmpeg version 9.9-the-configured-one"


@pytest.fixture
def tools(tmp_path):
    """(env, log of the configured tools' runs, log of the PATH stubs' runs)."""
    real = {name: shutil.which(name) for name in ("ffmpeg", "ffprobe")}
    folder, stubs = tmp_path / "tools", tmp_path / "stubs"
    folder.mkdir()
    stubs.mkdir()
    log, stub_log = tmp_path / "configured.log", tmp_path / "stubs.log"
    (folder / "ffprobe").write_text(f'#!/bin/sh\necho "ffprobe $*" >> {log}\nexec {real["ffprobe"]} "$@"\n')
    (folder / "ffmpeg").write_text(f'#!/bin/sh\nif [ "$1" = "-version" ]; then echo "{VERSION}"; exit 0; fi\n'
                                   f'echo "ffmpeg $*" >> {log}\nexec {real["ffmpeg"]} "$@"\n')
    for name in ("ffmpeg", "ffprobe"):
        (stubs / name).write_text(f'#!/bin/sh\necho "{name} $*" >> {stub_log}\necho "not this {name}" >&2\nexit 1\n')
    for path in (*folder.iterdir(), *stubs.iterdir()):
        path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    env.update(PYTHONPATH=str(ROOT), FILMFUND_INSTANCE_DIR=str(tmp_path / "instance"),
               FILMFUND_FFMPEG=str(folder / "ffmpeg"), FILMFUND_FFPROBE=str(folder / "ffprobe"),
               PATH=f"{stubs}{os.pathsep}{env.get('PATH', '')}")
    subprocess.run([sys.executable, "-m", "filmfund.cli", "db", "upgrade"], env=env, check=True,
                   capture_output=True, timeout=120)
    return env, log, stub_log


def _ingest(env: dict, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "filmfund.cli", "media", "ingest", *args], env=env,
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.mark.parametrize("wait", [True, False], ids=["wait", "queued"])
def test_ingest_runs_the_configured_ffmpeg_and_ffprobe_from_its_first_probe(clips, tmp_path, tools, wait):
    env, log, stub_log = tools
    card = tmp_path / "card"
    card.mkdir()
    take = card / "00000.MTS"
    shutil.copy(clips / "good_1080i.MTS", take)
    output = _ingest(env, *(["--wait"] if wait else []), str(card))
    assert (" ready" if wait else " uploaded") in output, output
    assert not stub_log.exists(), stub_log.read_text()
    runs = log.read_text().splitlines()
    assert any(line.startswith("ffprobe ") and line.endswith(str(take)) for line in runs), runs
    with sqlite3.connect(Path(env["FILMFUND_INSTANCE_DIR"]) / "filmfund.db") as db:
        probed = db.execute("SELECT probe FROM media_assets").fetchone()[0]
        versions = {v for (v,) in db.execute("SELECT ffmpeg_version FROM media_jobs WHERE started_at IS NOT NULL")}
    assert probed and '"streams"' in probed  # the configured ffprobe's answer, kept for the jobs
    if wait:  # the jobs ran in this process: the version they record is the configured ffmpeg's
        assert any(line.startswith("ffmpeg ") and "pipe:0" in line for line in runs), runs
        assert versions == {VERSION}, versions
