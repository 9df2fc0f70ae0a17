"""Benchmark: ingest of a 1080i camcorder card against the edit-proxy encode alone (issue 6.9).

An ingest decodes the clip once: the same ffmpeg run checks every frame (showinfo, error lines
placed in time), deinterlaces it once and feeds both the edit proxy's encoder and the poster.
The target: check + proxy + poster within 1.1x the time of the proxy encode alone. CPU time is
printed beside wall time: on a shared machine it is the steadier figure. For
comparison, the way it was before (a decode-only check, then the proxy, then a poster, each
decoding the clip again) is timed too, on the same argv filmfund builds.

Also measured, end to end through filmfund (a temporary instance: SQLite, folder storage): the
whole ingest of the card (copy and SHA-256 into storage, probe, the verify job that checks and
writes proxy and poster), as a realtime factor.

    .venv/bin/python bench/media_ingest.py [--seconds 20] [--runs 3]

Prints a Markdown table for the README.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from filmfund.media import avchd, ffmpeg  # noqa: E402

CAMERA = ("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=50,format=yuv420p "
          "-f lavfi -i sine=frequency=440:sample_rate=48000 -t {t} "
          "-vf tinterlace=mode=interleave_top,setfield=tff -c:v libx264 -preset veryfast -profile:v high "
          "-level:v 4.0 -flags +ilme+ildct -x264-params tff=1:keyint=12:bframes=2:repeat-headers=1 -b:v 15M "
          "-maxrate 17M -bufsize 10M -r 25 -c:a ac3 -b:a 256k -ac 2 -f mpegts -mpegts_m2ts_mode 1 -muxrate 20M {out}")


def make_card(root: Path, seconds: int) -> Path:
    bdmv = root / "PRIVATE" / "AVCHD" / "BDMV"
    for d in ("STREAM", "CLIPINF", "PLAYLIST"):
        (bdmv / d).mkdir(parents=True)
    clip = bdmv / "STREAM" / "00000.MTS"
    subprocess.run(CAMERA.format(t=seconds, out=clip).split(), check=True, stdin=subprocess.DEVNULL)
    (bdmv / "CLIPINF" / "00000.CPI").write_bytes(avchd.build_clpi(clip.stat().st_size))
    (bdmv / "PLAYLIST" / "00000.MPL").write_bytes(avchd.build_mpls([("00000", 1)]))
    return clip


def timed(fn) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the child processes: ffmpeg, ffprobe, the
    ingest's own process). CPU time hardly depends on the machine's load; wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    fn()
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ingest_once(card: Path, work: Path, n: int) -> float:
    """filmfund's own ingest of the card, in a fresh instance: returns the wall time."""
    code = f"""
import sys, time
sys.path.insert(0, {str(ROOT)!r})
from filmfund import create_app, jobs
from filmfund.extensions import db
app = create_app({{"RATELIMIT_ENABLED": False}})
with app.app_context():
    db.create_all()
    from filmfund.media import services
    from filmfund.media.models import AssetState
    t = time.perf_counter()
    [r] = services.ingest_paths([{str(card)!r}])
    jobs.run_burst(max_tasks=1)  # the verify job: check + proxy + poster
    took = time.perf_counter() - t
    db.session.expire_all()
    asset = services.get_asset(r.asset.public_id)
    assert asset.state == AssetState.VERIFIED, (asset.state, asset.problems)
    assert asset.rendition("proxy") and asset.rendition("poster"), asset.renditions
    print(took)
"""
    inst = work / f"instance-{n}"
    env = {**os.environ, "FILMFUND_INSTANCE_DIR": str(inst), "FILMFUND_DATABASE_URL": f"sqlite:///{inst / 'db.sqlite'}"}
    for var in ("FILMFUND_STORAGE_URL", "FILMFUND_QUEUE_URL", "FILMFUND_REPLICA_URL", "FILMFUND_MEDIA_PROFILES"):
        env.pop(var, None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"filmfund ingest failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20, help="length of the generated 1080i clip")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    profiles = tomllib.loads((ROOT / "filmfund" / "media" / "profiles.toml").read_text())
    with tempfile.TemporaryDirectory(prefix="ff-ingest-bench-") as tmp:
        tmp = Path(tmp)
        src = make_card(tmp / "CARD", args.seconds)
        info = ffmpeg.summarize(ffmpeg.probe(str(src)))
        proxy, poster = profiles["proxy"], profiles["poster"]
        out = {k: str(tmp / f"out-{k}") for k in ("proxy.mp4", "poster.jpg", "check-proxy.mp4", "check-poster.jpg")}
        proxy_alone = ffmpeg.video_rendition_argv(str(src), out["proxy.mp4"], info, proxy)
        single = ffmpeg.check_and_proxy_argv(str(src), out["check-proxy.mp4"], out["check-poster.jpg"], info, proxy, poster)
        poster_alone = ffmpeg.poster_argv(str(src), out["poster.jpg"], info, poster)
        rows: dict[str, list[tuple[float, float]]] = {"proxy alone": [], "check + proxy + poster, one decode": [],
                                        "check, then proxy, then poster (three decodes)": [],
                                        "filmfund ingest of the card (copy, SHA-256, probe, one decode)": []}
        for n in range(args.runs):  # alternate, so drift in machine load hits all alike
            rows["proxy alone"].append(timed(lambda: ffmpeg.run(proxy_alone, timeout=3600)))
            rows["check + proxy + poster, one decode"].append(timed(lambda: ffmpeg.checked_run(single, timeout=3600)))

            def three() -> None:
                ffmpeg.decode_pass(str(src), timeout=3600)
                ffmpeg.run(proxy_alone, timeout=3600)
                ffmpeg.run(poster_alone, timeout=3600)

            rows["check, then proxy, then poster (three decodes)"].append(timed(three))
            took: list[float] = []
            wall, cpu = timed(lambda: took.append(ingest_once(tmp / "CARD", tmp, n)))
            rows["filmfund ingest of the card (copy, SHA-256, probe, one decode)"].append((took[0], cpu))
        base = statistics.median(w for w, _ in rows["proxy alone"])
        base_cpu = statistics.median(c for _, c in rows["proxy alone"])
        print(f"Ingest of a {args.seconds} s 1080i50 AVCHD card (H.264 High TFF + AC-3, "
              f"{src.stat().st_size / 1e6:.0f} MB), median of {args.runs} runs, proxy profile preset "
              f"{proxy.get('preset')} ({ffmpeg.version().split(' Copyright')[0]}):\n")
        print("| run | wall, median (s) | vs proxy alone | realtime factor | CPU, median (s) | CPU vs proxy alone |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, times in rows.items():
            m = statistics.median(w for w, _ in times)
            c = statistics.median(c for _, c in times)
            print(f"| {name} | {m:.2f} | {m / base:.2f}x | {args.seconds / m:.1f}x | {c:.1f} | {c / base_cpu:.2f}x |")
        print(f"\nMachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.")


if __name__ == "__main__":
    main()
