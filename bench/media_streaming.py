"""Benchmark: HLS packaging against the edit proxy's encode of the same clip, and what the
early-access mark costs per viewer.

Makes a camera-like 1080i clip (media.md's fixture), then, alternately for --runs runs:
- the edit proxy (profiles.toml `[proxy]`, the argv of filmfund.media.ffmpeg.video_rendition_argv);
- the HLS package (profiles.toml `[hls]`, filmfund.media.ffmpeg.hls_argv: one decode, the whole
  ladder encoded, 4 s segments).
Wall time and CPU seconds (the ffmpeg child's user + system) of each, median of the runs.

Then the mark: every segment of one variant (one viewer watching the whole clip at that rung) is
marked as streaming does at segment time (filmfund.media.ffmpeg.mark_argv); CPU seconds and the
marked segments' bytes, per minute of film, and for a 90-minute film. Viewers beyond the first
cost the same each (every donor's copy is their own); a viewer who watches again costs nothing
(the marked segments are cached for two days).

    .venv/bin/python bench/media_streaming.py [--seconds 20] [--runs 3]

Prints Markdown tables for the README.
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


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ffmpeg failed: {err[-2000:]}\n{' '.join(argv)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20, help="length of the generated 1080i clip")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    profiles = tomllib.loads((ROOT / "filmfund" / "media" / "profiles.toml").read_text())
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hls-bench-") as tmp:
        tmp = Path(tmp)
        src = tmp / "00000.MTS"
        subprocess.run(CAMERA.format(t=args.seconds, out=src).split(), check=True)
        info = ffmpeg.summarize(ffmpeg.probe(str(src)))
        proxy, hls = [], []
        out_dir = tmp / "hls"
        for _ in range(args.runs):  # alternate, so drift in machine load hits both alike
            argv = ffmpeg.video_rendition_argv(str(src), str(tmp / "proxy.mp4"), info, profiles["proxy"])
            proxy.append(timed(argv))
            for f in out_dir.glob("*"):
                f.unlink()
            out_dir.mkdir(exist_ok=True)
            argv, ladder = ffmpeg.hls_argv(str(src), str(out_dir), info, profiles["hls"])
            hls.append(timed(argv))
        proxy_size = (tmp / "proxy.mp4").stat().st_size
        hls_size = sum(f.stat().st_size for f in out_dir.glob("*.ts"))
        pw, pc = statistics.median(w for w, _ in proxy), statistics.median(c for _, c in proxy)
        hw, hc = statistics.median(w for w, _ in hls), statistics.median(c for _, c in hls)
        rungs = ", ".join(f"{r['height']}p {r['bitrate']}" for r in ladder)
        print(f"Clip: {args.seconds} s of 1080i (H.264 High TFF + AC-3), {args.runs} runs, median; "
              f"load average {load:.1f} at the start.\n")
        print("| output | wall | CPU (user+sys) | realtime factor | bytes | vs proxy (wall) |")
        print("|---|---|---|---|---|---|")
        print(f"| edit proxy 540p (`[proxy]`) | {pw:.2f} s | {pc:.2f} s | {args.seconds / pw:.1f}x | {proxy_size:,} | 1.00x |")
        print(f"| HLS ladder ({rungs}) | {hw:.2f} s | {hc:.2f} s | {args.seconds / hw:.1f}x | {hls_size:,} | "
              f"{hw / pw:.2f}x |")

        # The mark: one viewer, the whole clip, at each rung.
        print("\n| mark at segment time, one viewer | CPU (user+sys) | per minute of film | 90-min film | "
              "marked bytes per minute | wall per 4 s segment |")
        print("|---|---|---|---|---|---|")
        for i, rung in enumerate(ladder):
            segs = sorted(out_dir.glob(f"v{i}_*.ts"))
            cpu = wall = 0.0
            size = 0
            for seg in segs:
                out = tmp / f"marked-{seg.name}"
                w, c = timed(ffmpeg.mark_argv(str(seg), str(out), "K7Q2M9XA", rung, profiles["hls"],
                                              profiles["mark"]))
                cpu, wall, size = cpu + c, wall + w, size + out.stat().st_size
            per_min = cpu * 60 / args.seconds
            print(f"| {rung['height']}p {rung['bitrate']} | {cpu:.2f} s | {per_min:.1f} s | "
                  f"{per_min * 90 / 60:.1f} min | {size * 60 / args.seconds / 1e6:.1f} MB | "
                  f"{wall / max(1, len(segs)):.2f} s |")


if __name__ == "__main__":
    main()
