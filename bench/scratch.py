"""A scratch PostgreSQL database for one benchmark run, made and dropped, or kept to be reused."""
from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


@contextmanager
def scratch_database(admin_url: str, prefix: str, keep: str | None = None) -> Iterator[tuple[str, bool]]:
    """(URL, whether it existed already) of a database on `admin_url`'s server: a new one named
    `prefix_<random>`, dropped afterwards; or, with `keep`, the database of that name, made if it
    does not exist and kept (seeding a million donations takes minutes: a second run reuses them)."""
    name = keep or f"{prefix}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        existed = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
        if not existed:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name, existed
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def name_every_donor(conn, word: str = "Donor") -> None:
    """Give every seeded donor (`donor-…@` addresses: `filmfund demo seed` makes no profile) a credit
    name, `Donor 0000123` (`word` and the id), 1 in 10 anonymous, with its search key written by the search's one rule
    (filmfund.typed.search_key), as a profile saved by the app has it."""
    from filmfund.typed import search_key

    conn.execute(sa.text(
        "INSERT INTO donor_profiles (user_id, credit_name, anonymous, rewards_opt_out, created_at, updated_at) "
        "SELECT id, :word || ' ' || lpad(id::text, 7, '0'), id % 10 = 0, false, now(), now() FROM users "
        "WHERE email LIKE 'donor-%' ON CONFLICT (user_id) DO NOTHING"), {"word": word})
    named = conn.execute(sa.text("SELECT user_id, credit_name FROM donor_profiles "
                                 "WHERE credit_name IS NOT NULL AND credit_name_key IS NULL")).all()
    if named:
        conn.execute(sa.text("UPDATE donor_profiles SET credit_name_key = :k WHERE user_id = :i"),
                     [{"i": user_id, "k": search_key(name)} for user_id, name in named])


def seeded_run(run, prefix: str, donations: int, repeat: int):
    """The command line of a bench that seeds a scratch database (`--donations`, `--repeat`,
    `--database-url`, `--keep`), and its `run(url, instance folder, donations, repeat, seed=...)`
    called on that database; returns (the parsed arguments, what `run` returned)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--donations", type=int, default=donations)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", metavar="NAME", help="keep the seeded database under this name, and reuse it "
                    "if it exists (migrated again, not seeded again): seeding a million takes minutes")
    args = ap.parse_args()
    with scratch_database(args.database_url, prefix, args.keep) as (url, existed):
        with tempfile.TemporaryDirectory() as tmp:
            return args, run(url, Path(tmp), args.donations, args.repeat, seed=not existed)
