"""Benchmark: a filmfund transcode against bare ffmpeg running the very same argv.

Makes a camera-like 1080i clip (H.264 High TFF + AC-3, 192-byte packets, as media.md's
fixture), builds the edit-proxy and web argv from profiles.toml with filmfund.media.ffmpeg,
then times, alternately, `subprocess.run(argv)` (bare) and `filmfund.media.ffmpeg.run(argv)`
(our runner: progress parsing from -progress pipe:1, a stderr-draining thread with a bounded
tail, a timeout timer, the parent-death wrapper). Same argv, same machine, same input.

    .venv/bin/python bench/media_transcode.py [--seconds 10] [--runs 3]

Prints a Markdown table for the README.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from filmfund.media import ffmpeg  # noqa: E402

CAMERA = ("ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1920x1080:rate=50,format=yuv420p "
          "-f lavfi -i sine=frequency=440:sample_rate=48000 -t {t} "
          "-vf tinterlace=mode=interleave_top,setfield=tff -c:v libx264 -preset veryfast -profile:v high "
          "-level:v 4.0 -flags +ilme+ildct -x264-params tff=1:keyint=12:bframes=2:repeat-headers=1 -b:v 15M "
          "-maxrate 17M -bufsize 10M -r 25 -c:a ac3 -b:a 256k -ac 2 -f mpegts -mpegts_m2ts_mode 1 -muxrate 20M {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10, help="length of the generated 1080i clip")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--renditions", default="proxy,web")
    args = ap.parse_args()
    profiles = tomllib.loads((ROOT / "filmfund" / "media" / "profiles.toml").read_text())
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as tmp:
        src = Path(tmp) / "00000.MTS"
        subprocess.run(CAMERA.format(t=args.seconds, out=src).split(), check=True)
        info = ffmpeg.summarize(ffmpeg.probe(str(src)))
        rows = []
        for name in args.renditions.split(","):
            out = Path(tmp) / f"{name}.mp4"
            argv = ffmpeg.video_rendition_argv(str(src), str(out), info, profiles[name])
            bare, ours, rss = [], [], 0.0
            for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
                t = time.perf_counter()
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        stdin=subprocess.DEVNULL)
                _pid, status, usage = os.wait4(proc.pid, 0)
                bare.append(time.perf_counter() - t)
                proc.returncode = os.waitstatus_to_exitcode(status)
                assert proc.returncode == 0, argv
                rss = max(rss, usage.ru_maxrss / 1024)
                t = time.perf_counter()
                ffmpeg.run(argv, timeout=3600, on_progress=lambda p: None)
                ours.append(time.perf_counter() - t)
            b, o = statistics.median(bare), statistics.median(ours)
            rows.append((name, profiles[name].get("preset"), b, o, (o - b) / b * 100, args.seconds / o, rss))
        print(f"Transcode of a {args.seconds} s 1080i H.264+AC-3 camera clip, median of {args.runs} runs "
              f"({ffmpeg.version().split(' Copyright')[0]}):\n")
        print("| rendition | preset | bare ffmpeg (s) | filmfund runner (s) | overhead | realtime factor | ffmpeg peak RSS |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, preset, b, o, pct, rt, rss in rows:
            print(f"| {name} | {preset} | {b:.2f} | {o:.2f} | {pct:+.1f}% | {rt:.1f}x | {rss:.0f} MiB |")
        print(f"\nMachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.")


if __name__ == "__main__":
    main()
