"""Run every benchmark in turn and print their Markdown tables (the README's figures).

    .venv/bin/python bench/run.py        # or: make bench

Each script also runs on its own, with its own options (see its docstring).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ("Pledge creation and webhook ingest, embedded SQLite", ["web_bench.py"]),
    ("Pledge creation and webhook ingest, PostgreSQL",
     ["web_bench.py", "--database-url", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"]),
    ("Web against bare Flask, 2 processes as `filmfund run --processes 2`, PostgreSQL",
     ["web_bench.py", "--processes", "2", "--database-url", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"]),
    ("The hot path against bare Flask (issue 16): filmfund run --processes 2, PostgreSQL, Redis",
     ["hot_path.py", "--database-url", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"]),
    ("Request times at 1k, 100k and 1M donations (demo seed), PostgreSQL", ["scale_bench.py"]),
    ("The producers' donations list and search at 1M donations, PostgreSQL", ["donations_list.py"]),
    ("Peak memory of a web process and a worker while a 4 GiB file is ingested", ["media_memory.py"]),
    ("Transcode: filmfund's runner against bare ffmpeg, same argv", ["media_transcode.py"]),
    ("Streaming: HLS packaging against the proxy encode, and the per-viewer cost of the mark", ["media_streaming.py"]),
    ("Ingest: a 1080i card, one decode for check, proxy and poster, against the proxy alone", ["media_ingest.py"]),
    ("Command line start-up: `filmfund --help` and a command with nothing to do", ["cli_startup.py"]),
    ("Checksum throughput: filmfund's streaming SHA-256 against sha256sum", ["media_checksum.py"]),
    ("Reward queues with 5,000 donors, embedded SQLite", ["fulfil_queues.py"]),
    ("Reward queues with 5,000 donors, PostgreSQL",
     ["fulfil_queues.py", "--database-url", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"]),
    ("Sign-in link requests: a donor's email against an unknown one", ["signin_timing.py"]),
]


def main() -> int:
    failed = 0
    for title, argv in RUNS:
        print(f"\n### {title}\n", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], stderr=subprocess.DEVNULL)
        failed |= proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
