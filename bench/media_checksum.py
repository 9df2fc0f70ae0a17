"""Benchmark: filmfund's streaming SHA-256 against coreutils `sha256sum` on the same file.

Writes a file of --mib MiB of random bytes, reads it once to warm the page cache, then times
alternately `filmfund.media.storage.sha256_file` (8 MiB readinto, hashlib) and `sha256sum`.
Checks both give the same digest.

    .venv/bin/python bench/media_checksum.py [--mib 1024] [--runs 3]

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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from filmfund.media.storage import sha256_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sha-bench-") as tmp:
        path = Path(tmp) / "blob.bin"
        with open(path, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(1024 * 1024))
        sha256_file(path)  # warm the page cache for both contenders
        ours, theirs = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            digest, _size = sha256_file(path)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            out = subprocess.run(["sha256sum", str(path)], check=True, capture_output=True, text=True).stdout
            theirs.append(time.perf_counter() - t)
            assert out.split()[0] == digest
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        o, s = statistics.median(ours), statistics.median(theirs)
        print(f"SHA-256 of a {args.mib} MiB file (page cache warm), median of {args.runs} runs:\n")
        print("| tool | seconds | MiB/s |")
        print("|---|---:|---:|")
        print(f"| filmfund `sha256_file` (8 MiB readinto) | {o:.2f} | {args.mib / o:.0f} |")
        print(f"| coreutils `sha256sum` | {s:.2f} | {args.mib / s:.0f} |")
        print(f"\nfilmfund runs at {s / o * 100:.0f}% of sha256sum's speed; peak RSS of the Python process "
              f"{rss:.0f} MiB (the file is never held in memory).")


if __name__ == "__main__":
    main()
