"""Benchmark: ingest as a crew runs it, end to end, against bare ffmpeg encodes (issue 17).

`filmfund media ingest --wait PATH` in a fresh process (a fresh instance: SQLite, folder
storage, its database migrated beforehand) does all the work of an ingest: the command line's
start, copying and hashing every file into storage, one probe, and the jobs (one decode per clip
that checks every frame and writes the edit proxy, the poster and the thumbnail strip). It is
timed from the command's start to its exit, against a bare `ffmpeg` encode of each clip into
the same 540p proxy (bwdif, scale, libx264 veryfast, AAC; no checks, no storage, no database), in
the same run, alternating, so both see the same machine load.

    .venv/bin/python bench/media_ingest.py [--clip-seconds 30] [--takes 20] [--take-seconds 10] [--runs 2]

Targets: one 30 s 1080i clip <= 1.1x its bare encode; a card of 20 takes of 10 s <= 1.15x the
bare encodes of its 20 takes one after the other. CPU time (user + system of every process,
ffmpeg included) is printed beside wall time: on a shared machine it is the steadier figure.
Where filmfund's time goes is read from its own job rows: before the first job starts (start,
app, copying, probing), inside the jobs, and after the last one ends; and, read from /proc while
the command runs, when its first encode starts (a child ffmpeg with libx264 on its command line:
the early decode of a lone take starts before the app is built) and the CPU of the command's own
process (app, copying and hashing, the jobs' Python) apart from its ffmpeg's and ffprobe's.
"""
from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from filmfund.media import avchd  # noqa: E402

CAMERA = ("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=50,format=yuv420p "
          "-f lavfi -i sine=frequency=440:sample_rate=48000 -t {t} "
          "-vf tinterlace=mode=interleave_top,setfield=tff -c:v libx264 -preset veryfast -profile:v high "
          "-level:v 4.0 -flags +ilme+ildct -x264-params tff=1:keyint=12:bframes=2:repeat-headers=1 -b:v 15M "
          "-maxrate 17M -bufsize 10M -r 25 -c:a ac3 -b:a 256k -ac 2 -f mpegts -mpegts_m2ts_mode 1 -muxrate 20M {out}")


def bare_encode(src: Path, out: Path) -> list[str]:
    """The edit proxy as a person would make it with ffmpeg alone (media.md's proxy settings)."""
    return ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), "-map", "0:v:0", "-map", "0:a:0",
            "-vf", "bwdif=mode=send_frame:parity=auto:deint=all,scale=-2:540:flags=lanczos,format=yuv420p",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "25", "-keyint_min", "25",
            "-sc_threshold", "0", "-c:a", "aac", "-b:a", "128k", "-ac", "2", str(out)]


def make_clip(folder: Path, seconds: int) -> Path:
    folder.mkdir(parents=True)
    clip = folder / "00000.MTS"
    subprocess.run(CAMERA.format(t=seconds, out=clip).split(), check=True, stdin=subprocess.DEVNULL)
    return clip


def make_card(root: Path, takes: int, seconds: int) -> list[Path]:
    """An AVCHD card of `takes` separate takes: one generated clip, remuxed once per take with
    its own service id, so every take has other bytes (no take is "already ingested")."""
    bdmv = root / "PRIVATE" / "AVCHD" / "BDMV"
    for d in ("STREAM", "CLIPINF", "PLAYLIST"):
        (bdmv / d).mkdir(parents=True)
    master = root.parent / "take-master.MTS"
    subprocess.run(CAMERA.format(t=seconds, out=master).split(), check=True, stdin=subprocess.DEVNULL)
    clips = []
    for n in range(takes):
        clip = bdmv / "STREAM" / f"{n:05d}.MTS"
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(master), "-map", "0", "-c", "copy",
                        "-mpegts_service_id", str(n + 1), "-metadata", f"service_name=take {n}",
                        "-mpegts_m2ts_mode", "1", "-muxrate", "20M", "-f", "mpegts", str(clip)], check=True)
        (bdmv / "CLIPINF" / f"{n:05d}.CPI").write_bytes(avchd.build_clpi(clip.stat().st_size))
        clips.append(clip)
    (bdmv / "PLAYLIST" / "00000.MPL").write_bytes(avchd.build_mpls([(f"{n:05d}", 1) for n in range(takes)]))
    master.unlink()
    return clips


def timed(fn) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the child processes and theirs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fresh_instance(work: Path, name: str) -> dict[str, str]:
    inst = work / name
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
    env.update(FILMFUND_INSTANCE_DIR=str(inst), PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "filmfund.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    return env


TICK = os.sysconf("SC_CLK_TCK")
POLL = 0.02  # seconds between two looks at the command's /proc entries


def own_cpu(pid: int) -> float | None:
    """User + system seconds of process `pid` itself, not of its children (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: the 14th and 15th fields


def encoding_child(pid: int) -> bool:
    """Is one of `pid`'s children an ffmpeg encoding with libx264 (the proxy's encode)? Each thread
    has its own list: the early decode's ffmpeg is started by a thread of its own."""
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    for child in children:
        try:
            if b"libx264" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                return True
        except OSError:
            continue
    return False


def ingest(path: Path, env: dict[str, str], expect: int) -> dict[str, float]:
    """`filmfund media ingest --wait PATH`, as a user types it; checks every take ended ready.
    Meanwhile /proc is read every POLL seconds: when the first encode starts, and the command's
    own CPU (its last reading, at most POLL seconds before it exits)."""
    started = datetime.utcnow()
    t0 = time.perf_counter()
    seen: dict[str, float] = {"own_cpu": 0.0}
    done = threading.Event()

    def look(pid: int) -> None:  # on a thread: the command's exit is waited for, not polled
        while not done.wait(POLL):
            seen["own_cpu"] = own_cpu(pid) or seen["own_cpu"]
            if "encode_at" not in seen and encoding_child(pid):
                seen["encode_at"] = time.perf_counter() - t0

    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "filmfund.cli", "media", "ingest", "--wait", str(path)],
                                env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, text=True)
        looking = threading.Thread(target=look, args=(proc.pid,))
        looking.start()
        proc.wait()
        ended = datetime.utcnow()
        done.set()
        looking.join()
        stdout.seek(0)
        stderr.seek(0)
        out = subprocess.CompletedProcess(proc.args, proc.returncode, stdout.read(), stderr.read())
    ready = [ln for ln in out.stdout.splitlines() if ln.endswith(" ready")]
    if out.returncode != 0 or len(ready) != expect:
        raise SystemExit(f"filmfund media ingest failed ({len(ready)} of {expect} ready):\n"
                         f"{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    with sqlite3.connect(Path(env["FILMFUND_INSTANCE_DIR"]) / "filmfund.db") as conn:
        rows = conn.execute("SELECT started_at, finished_at FROM media_jobs").fetchall()
    spans = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in rows]
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    return {"before_jobs": (first - started).total_seconds(), "in_jobs": sum((b - a).total_seconds() for a, b in spans),
            "after_jobs": (ended - last).total_seconds(), "jobs": len(spans),
            "encode_at": seen.get("encode_at", float("nan")), "own_cpu": seen["own_cpu"]}


def compare(name: str, path: Path, clips: list[Path], work: Path, runs: int, target: float) -> dict:
    bare_w, bare_c, ff_w, ff_c, parts = [], [], [], [], []
    for n in range(runs):  # alternate: drift in the machine's load hits both alike
        def bare() -> None:
            for i, clip in enumerate(clips):
                subprocess.run(bare_encode(clip, work / f"bare-{i}.mp4"), check=True)

        w, c = timed(bare)
        bare_w.append(w)
        bare_c.append(c)
        env = fresh_instance(work, f"{name}-{n}")
        got: list[dict] = []
        w, c = timed(lambda: got.append(ingest(path, env, len(clips))))
        ff_w.append(w)
        ff_c.append(c)
        got[0]["children_cpu"] = c - got[0]["own_cpu"]
        parts.append(got[0])
    return {"name": name, "bare": statistics.median(bare_w), "bare_cpu": statistics.median(bare_c),
            "filmfund": statistics.median(ff_w), "filmfund_cpu": statistics.median(ff_c), "target": target,
            "ratios": [f / b for f, b in zip(ff_w, bare_w)], "parts": parts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip-seconds", type=int, default=30)
    ap.add_argument("--takes", type=int, default=20)
    ap.add_argument("--take-seconds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--only", choices=("clip", "card"), default=None)
    args = ap.parse_args()
    load_start = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="ff-ingest-bench-", dir=os.environ.get("FILMFUND_BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        if args.only in (None, "clip"):
            clip = make_clip(tmp / "clip", args.clip_seconds)
            results.append(compare(f"one {args.clip_seconds} s 1080i clip", clip.parent, [clip], tmp, args.runs, 1.1))
        if args.only in (None, "card"):
            clips = make_card(tmp / "CARD", args.takes, args.take_seconds)
            results.append(compare(f"a card of {args.takes} takes of {args.take_seconds} s", tmp / "CARD", clips,
                                   tmp, args.runs, 1.15))
    load_end = os.getloadavg()
    print(f"`filmfund media ingest --wait` against bare ffmpeg proxy encodes of the same clips (1080i50 "
          f"H.264 + AC-3 in, 540p H.264 veryfast + AAC out), median of {args.runs} run(s), alternating; "
          f"{os.cpu_count()} cores, load average {load_start[0]:.1f} at the start, {load_end[0]:.1f} at the end\n")
    print("| work | bare ffmpeg (s) | filmfund ingest (s) | ratio, median of the runs' (each run) | target | CPU bare (s) | CPU filmfund (s) | CPU ratio |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    failed = False
    for r in results:
        ratio = statistics.median(r["ratios"])  # of each alternating pair: the load drifts between pairs
        met = ratio <= r["target"]
        failed |= not met
        each = ", ".join(f"{x:.2f}x" for x in r["ratios"])
        print(f"| {r['name']} | {r['bare']:.1f} | {r['filmfund']:.1f} | **{ratio:.2f}x** ({each}) | "
              f"<= {r['target']}x: {'met' if met else 'not met'} | {r['bare_cpu']:.1f} | {r['filmfund_cpu']:.1f} | "
              f"{r['filmfund_cpu'] / r['bare_cpu']:.2f}x |")
    print("\nWhere filmfund's time goes (median over runs, seconds):\n")
    print("| work | before the first job (start, app, copy + SHA-256, probe) | inside the jobs | after the last job | jobs "
          "| first encode starts | CPU of the command's own process | CPU of its ffmpeg and ffprobe | CPU bare |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    keys = ("before_jobs", "in_jobs", "after_jobs", "jobs", "encode_at", "own_cpu", "children_cpu")
    for r in results:
        med = {k: statistics.median(p[k] for p in r["parts"]) for k in keys}
        print(f"| {r['name']} | {med['before_jobs']:.2f} | {med['in_jobs']:.2f} | {med['after_jobs']:.2f} | {med['jobs']:.0f} "
              f"| {med['encode_at']:.2f} | {med['own_cpu']:.2f} | {med['children_cpu']:.2f} | {r['bare_cpu']:.2f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
