"""Benchmark: how soon the command line answers (issue 17, item 1), in the manner of hyperfine.

Each command runs --runs times as a user runs it (`filmfund …` in a fresh process, a temporary
instance), after one warm-up; the table gives the median, the fastest and the slowest wall time
against the interpreter's own start (`python -c pass`). Targets: `filmfund --help` and a command
with nothing to do under 0.3 s; a command that needs the app builds it once.

    .venv/bin/python bench/cli_startup.py [--runs 10]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILMFUND = [sys.executable, "-m", "filmfund.cli"]


def timings(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-cli-bench-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
        env.update(FILMFUND_INSTANCE_DIR=str(tmp / "instance"), PYTHONPATH=str(ROOT))
        (tmp / "empty-card").mkdir()
        subprocess.run([*FILMFUND, "db", "upgrade"], env=env, check=True, capture_output=True)
        rows = [
            ("`python -c pass` (the interpreter alone)", [sys.executable, "-c", "pass"], None),
            ("`filmfund --help`", [*FILMFUND, "--help"], 0.3),
            ("`filmfund media --help`", [*FILMFUND, "media", "--help"], 0.3),
            ("`filmfund media ingest EMPTY_FOLDER` (nothing to do)", [*FILMFUND, "media", "ingest", str(tmp / "empty-card")], 0.3),
            ("`filmfund media verify --all` (builds the app once; empty library)", [*FILMFUND, "media", "verify", "--all"], None),
        ]
        print(f"{args.runs} runs each after a warm-up; {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f} at the start\n")
        print("| command | median (s) | min (s) | max (s) | target |")
        print("| --- | ---: | ---: | ---: | --- |")
        failed = False
        for name, argv, target in rows:
            t = timings(argv, env, args.runs)
            med = statistics.median(t)
            verdict = "" if target is None else (f"< {target} s: met" if med < target else f"< {target} s: **not met**")
            failed |= target is not None and med >= target
            print(f"| {name} | {med:.3f} | {min(t):.3f} | {max(t):.3f} | {verdict} |")
        print(f"\nLoad average {os.getloadavg()[0]:.1f} at the end.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
