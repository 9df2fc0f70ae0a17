"""Sign-in link requests: the time of POST /login for a donor's email against an unknown email.

    .venv/bin/python bench/signin_timing.py [--requests N]

The request only checks the address's form and queues the mail task (filmfund/auth/links.py),
so both columns should agree within the noise. Runs in-process (Flask's test client, embedded
SQLite and queue in a temporary instance folder), alternating the two emails.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per email")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FILMFUND_INSTANCE_DIR"] = tmp
        for var in ("FILMFUND_DATABASE_URL", "FILMFUND_QUEUE_URL", "FILMFUND_SMTP_URL"):
            os.environ.pop(var, None)
        from filmfund import create_app
        from filmfund.auth import services
        from filmfund.extensions import db, limiter

        app = create_app({"RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False})
        limiter.enabled = False
        with app.app_context():
            db.create_all()
            services.get_or_create_user("donor@example.org", "donor")
            db.session.commit()
        client = app.test_client()
        times: dict[str, list[float]] = {"known donor": [], "unknown": []}
        emails = {"known donor": "donor@example.org", "unknown": "nobody@example.org"}
        for _ in range(20):  # warm up
            client.post("/login", data={"email": "warm@example.org"})
        for _ in range(args.requests):
            for label, address in emails.items():
                start = time.perf_counter()
                resp = client.post("/login", data={"email": address})
                times[label].append((time.perf_counter() - start) * 1000)
                assert resp.status_code == 302
        print(f"{args.requests} requests per email, alternating, in-process, embedded SQLite queue\n")
        print("| email | p50 ms | p95 ms | mean ms |")
        print("| --- | ---: | ---: | ---: |")
        for label, values in times.items():
            values.sort()
            print(f"| {label} | {statistics.median(values):.2f} | {values[int(len(values) * 0.95)]:.2f} "
                  f"| {statistics.fmean(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
