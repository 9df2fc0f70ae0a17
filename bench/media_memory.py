"""Benchmark: peak memory of a web process and a worker while a 4 GiB file is ingested.

A real filmfund app (served as `filmfund run` serves it: waitress, 8 threads; embedded SQLite
and folder storage) receives the file
as a producer's upload from the footage page (multipart, streamed from disk by the client); then
`filmfund worker --burst` runs the queued jobs on it. Each process's peak resident memory
(VmHWM, the kernel's high-water mark) is read from /proc. The file is 4 GiB of zeros behind an
MPEG-TS name (a sparse file: cheap to make, and every byte is still read, hashed and stored), so
the worker's jobs probe it and diagnose it rather than transcode hours of video. The harness
signs the bench producer in on every request (the sign-in and its second factor have their own
tests); the target is < 150 MB for each process.

    .venv/bin/python bench/media_memory.py [--gib 4]
"""
from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# The producer is made in its own process, as `filmfund users …` makes one: hashing the password
# (argon2, 64 MiB while it runs) is not part of serving an upload.
PRODUCER = textwrap.dedent("""
    from filmfund import create_app
    from filmfund.auth import services as auth
    from filmfund.extensions import db

    with create_app().app_context():
        user = auth.ensure_user("bench-producer@example.org")
        auth.set_password(user, "bench producer password")
        auth.grant_role(user, "producer")
        db.session.commit()
""")

SERVER = textwrap.dedent("""
    import sys
    from flask_login import login_user
    from filmfund import create_app
    from filmfund.auth import services as auth
    from filmfund.extensions import db

    app = create_app({"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False})
    with app.app_context():
        uid = auth.find_user("bench-producer@example.org").id

    @app.before_request
    def _signed_in():  # the bench harness, not the app: every request is the producer's
        from filmfund.auth.models import User
        login_user(db.session.get(User, uid))

    from filmfund import serving
    serving.serve_forever(app, serving.bind("127.0.0.1", int(sys.argv[1])), 8)  # as `filmfund run` serves
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def watch(proc: subprocess.Popen) -> tuple[float, float]:
    """The process's peak resident memory (MiB) and how long it ran (s), watched until it ends."""
    peak, t0 = 0.0, time.monotonic()
    while proc.poll() is None:
        try:
            peak = max(peak, peak_mib(proc.pid))
        except FileNotFoundError:
            break
        time.sleep(0.1)
    return peak, time.monotonic() - t0


def upload(port: int, path: Path) -> int:
    boundary = "filmfundbench7d3a"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            "Content-Type: video/mp2t\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.putrequest("POST", "/footage/upload")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with path.open("rb") as fh:
        while chunk := fh.read(8 << 20):
            conn.send(chunk)
    conn.send(tail)
    status = conn.getresponse().status
    conn.close()
    return status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("FILMFUND_BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FILMFUND_", "STRIPE_"))}
        env.update(FILMFUND_INSTANCE_DIR=str(tmp / "instance"), TMPDIR=str(tmp))
        subprocess.run([BIN / "filmfund", "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([sys.executable, "-c", PRODUCER], env=env, cwd=tmp, check=True)
        clip = tmp / "00000.MTS"
        with clip.open("wb") as fh:
            fh.truncate(int(args.gib * 1024**3))
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env, cwd=tmp)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            idle = peak_mib(server.pid)
            t0 = time.monotonic()
            status = upload(port, clip)
            upload_s = time.monotonic() - t0
            web_peak = peak_mib(server.pid)
        finally:
            server.terminate()
            server.wait(30)
        worker = subprocess.Popen([BIN / "filmfund", "worker", "--burst"], env=env, cwd=tmp,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        worker_peak, worker_s = watch(worker)
        ran = (worker.stdout.read() or "").strip()
        # The command line's own ingest of another take of the same size (other bytes: a packet
        # more), `--wait` running its jobs in that one process, as a crew ingests a card.
        take = tmp / "card" / "00001.MTS"
        take.parent.mkdir()
        with take.open("wb") as fh:
            fh.truncate(int(args.gib * 1024**3) + 192)
        cli = subprocess.Popen([BIN / "filmfund", "media", "ingest", "--wait", str(take.parent)], env=env, cwd=tmp,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli_peak, cli_s = watch(cli)
    size = f"{args.gib:g} GiB"
    print(f"Upload of a {size} file to the footage page (HTTP {status}, {upload_s:.0f} s), then "
          f"`filmfund worker --burst` ({ran}, {worker_s:.0f} s); {os.cpu_count()} cores\n")
    print("| process | peak RSS (MiB) | target |")
    print("| --- | ---: | --- |")
    print(f"| web process (waitress, idle before the upload: {idle:.0f} MiB) | {web_peak:.0f} | < 150 |")
    print(f"| worker | {worker_peak:.0f} | < 150 |")
    print(f"| `filmfund media ingest --wait` of another {size} take (copy, SHA-256, its jobs; {cli_s:.0f} s) "
          f"| {cli_peak:.0f} | < 150 |")
    return 0 if status in (200, 303) else 1


if __name__ == "__main__":
    sys.exit(main())
