"""Issue 16.5: an audit log out of the application's reach.

Every export and failed sign-in is recorded; no email is left in it (erasure included); each entry
is chained to the one before it, and the hourly check finds an edit or a deletion by anyone,
superuser included (here: with the triggers set aside, as only the table's owner or a superuser
can); two writers never fork the chain.
"""
from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from filmfund import audit
from filmfund.audit import AuditEntry, list_audit, record_audit, verify_chain
from filmfund.auth import audit_people
from filmfund.extensions import db
from tests.conftest import STAFF_PASSWORD
from tests.site.helpers import csrf_token, pay

DONOR = "Quiet.Donor@Example.org"


def _raw_log() -> str:
    """Every stored character of the log, as a superuser reading the table would see it."""
    db.session.expire_all()
    rows = db.session.execute(sa.text("SELECT * FROM audit_log")).all()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def _superuser(sql: str, **params) -> None:
    """A change made behind the application's back, past the append-only triggers."""
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # superuser only
            conn.execute(sa.text(sql), params)
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
            conn.execute(sa.text(sql), params)
            for trigger in audit.SQLITE_TRIGGERS:
                conn.execute(sa.text(trigger))


def _entries(n: int) -> None:
    for i in range(n):
        record_audit("settings.change", f"campaign {i}", {"i": i}, actor="cli")
        db.session.commit()


# ---------------------------------------------------------------- failed sign-ins and emails


def test_a_failed_sign_in_is_recorded_without_the_address_or_the_password(app, client, make_user, login_as,
                                                                          campaign):
    pay(2500, DONOR)
    boss = make_user("boss@filmfund.test", "producer")
    typed_password = "hunter2-the-guess"
    for email in (DONOR, "nobody@example.org", "hunter2-in-the-email-field"):
        resp = client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": email,
                                           "password": typed_password}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
        assert resp.status_code == 401
    failed = list_audit(action="auth.sign_in_failed")
    assert len(failed) == 3 and all(e.ip == "198.51.100.7" and e.details_dict == {"reason": "password"}
                                    for e in failed)
    assert all(re.fullmatch(r"email#[0-9a-f]{24}", e.target) for e in failed)
    raw = _raw_log()
    for secret in (DONOR, DONOR.lower(), "nobody@example.org", typed_password, "hunter2", "Example.org".lower()):
        assert secret not in raw.lower()
    # The same address is the same mark (case aside), so a producer who knows it finds its attempts.
    assert len({e.target for e in failed}) == 3
    assert [e.target for e in list_audit(refs=audit_people.refs_for(DONOR.upper()))] == [audit.email_ref(DONOR)]
    page = login_as(app.test_client(), boss).get(f"/admin/audit?who={DONOR}").get_data(as_text=True)
    assert page.count("<code>auth.sign_in_failed</code>") == 1


def test_a_dead_sign_in_link_is_a_failed_sign_in(app, client):
    assert client.post("/login/magic/not-a-real-token", data={"csrf_token": csrf_token(client, "/login")}
                       ).status_code == 302
    (entry,) = list_audit(action="auth.sign_in_failed")
    assert (entry.target, entry.details_dict) == ("", {"reason": "link"})


def test_a_wrong_second_factor_is_recorded_against_the_account(app, client, make_user):
    from filmfund.auth import totp

    boss = make_user("boss@filmfund.test", "producer", password=STAFF_PASSWORD)
    boss.totp_secret = totp.new_secret()
    boss.totp_confirmed_at = boss.created_at
    db.session.commit()
    client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": boss.email,
                                "password": STAFF_PASSWORD})
    resp = client.post("/login/2fa", data={"csrf_token": csrf_token(client, "/login/2fa"), "code": "000000"})
    assert resp.status_code in (401, 302)
    (entry,) = list_audit(action="auth.sign_in_failed")
    assert (entry.target, entry.details_dict) == (f"user:{boss.id}", {"reason": "second_factor"})
    assert boss.email not in _raw_log()


def test_erasure_leaves_no_email_in_the_log(app, client, campaign, login_as, token_for, make_user):
    from filmfund.rewards import donor_data
    from filmfund.auth.services import find_user

    pay(5500, DONOR, credit_name="Erase Me")
    user = find_user(DONOR)
    client.post("/login", data={"csrf_token": csrf_token(client, "/login"), "email": DONOR, "password": "guess-guess"})
    headers = token_for(user)  # token.create, by id
    assert client.get("/api/v1/me/data", headers=headers).status_code == 200  # export.donor_data
    record_audit("legacy.call", f"a caller that still passes {DONOR}", {"to": DONOR, "nested": [DONOR]}, actor=DONOR)
    db.session.commit()
    donor_data.erase_donor(user)
    db.session.commit()
    raw = _raw_log().lower()
    assert DONOR.lower() not in raw and "quiet.donor" not in raw
    actions = {e.action for e in list_audit()}
    assert {"auth.sign_in_failed", "token.create", "export.donor_data", "donor.erase"} <= actions
    (erase,) = list_audit(action="donor.erase")
    assert erase.target == f"user:{user.id}"
    boss = make_user("boss@filmfund.test", "producer")
    page = login_as(app.test_client(), boss).get("/admin/audit").get_data(as_text=True)
    assert "erased.invalid" in page and DONOR.lower() not in page.lower()
    assert verify_chain()[0] == []


# ---------------------------------------------------------------- exports


def test_every_export_is_recorded(app, client, campaign, login_as, producer, partner, token_for, runner):
    pay(50000, "exec@example.org", credit_name="=Exec")
    staff = login_as(app.test_client(), producer)
    for path in ("/admin/credits.csv", "/admin/credits.txt", "/admin/partner/statement.csv",
                 "/admin/rewards/packing-list.csv"):
        assert staff.get(path).status_code == 200, path
    assert login_as(app.test_client(), partner).get("/admin/partner/statement.csv").status_code == 200
    from filmfund.auth.services import find_user

    donor = find_user("exec@example.org")
    assert client.get("/api/v1/me/data", headers=token_for(donor)).status_code == 200
    assert login_as(app.test_client(), donor).get("/account/data").status_code == 200
    assert runner.invoke(args=["credits", "export", "--format", "csv"]).exit_code == 0
    got = sorted((e.action, e.actor) for e in list_audit(action="export"))
    assert got == sorted([
        ("export.credits", f"user:{producer.id}"), ("export.credits", f"user:{producer.id}"),
        ("export.credits", "cli"),
        ("export.partner_statement", f"user:{producer.id}"), ("export.partner_statement", f"user:{partner.id}"),
        ("export.packing_list", f"user:{producer.id}"),
        ("export.donor_data", f"user:{donor.id}"), ("export.donor_data", f"user:{donor.id}")])
    assert "exec@example.org" not in _raw_log()


# ---------------------------------------------------------------- the chain and its check


def test_the_chain_links_every_entry_to_the_one_before(app):
    _entries(5)
    rows = db.session.scalars(sa.select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    prev = audit.GENESIS
    for r in rows:  # recomputed here from the documented rule, not read back from the code's own check
        import hashlib
        import json

        body = json.dumps([r.seq, r.created_at.astimezone(__import__("datetime").timezone.utc)
                           .strftime("%Y-%m-%dT%H:%M:%S.%fZ"), r.actor, r.action, r.target, r.details, r.ip],
                          ensure_ascii=False, separators=(",", ":"))
        assert r.prev_hash == prev
        assert r.entry_hash == hashlib.sha256((prev + body).encode()).hexdigest()
        prev = r.entry_hash
    assert verify_chain() == ([], 5)


@pytest.mark.parametrize("tamper, expected", [
    ("UPDATE audit_log SET details = '{\"i\": 99}' WHERE seq = 3", "entry #3 was changed"),
    ("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1", "entry #1 was changed"),
    ("DELETE FROM audit_log WHERE seq = 2", "entries #2 to #2 are missing"),
    ("DELETE FROM audit_log WHERE seq >= 4", "entries were removed from its end"),
    ("DELETE FROM audit_log", "entries were removed from its end"),
])
def test_the_hourly_check_finds_an_edit_or_a_deletion_by_a_superuser(app, client, login_as, producer, tamper,
                                                                      expected):
    from filmfund.rewards import ledger_check, tasks

    _entries(5)
    assert ledger_check.check_ledger(record="schedule") == []  # passes, and keeps the head it saw
    _superuser(tamper)
    assert tasks.scheduled_ledger_check.call_local() >= 1  # the hourly job itself
    check = ledger_check.last_check()
    assert not check.ok and check.audit_ok is False
    assert expected in check.breaches, check.breaches
    html = login_as(client, producer).get("/admin/").get_data(as_text=True)
    assert 'id="audit-chain"' in html and "Broken" in html and expected in html


def test_a_whole_chain_rewritten_after_the_check_is_found(app):
    """A superuser who knows the rule recomputes every hash after an edit: the head the last check
    saw (kept outside the database) no longer matches."""
    _entries(4)
    assert verify_chain(keep_anchor=True) == ([], 4)
    rows = db.session.execute(sa.select(AuditEntry.__table__).order_by(AuditEntry.seq)).all()
    prev = audit.GENESIS
    for row in rows:
        details = '{"i": 42}' if row.seq == 2 else row.details
        digest = audit.chain_hash(prev, audit.canonical(row.seq, row.created_at, row.actor, row.action,
                                                        row.target, details, row.ip))
        _superuser("UPDATE audit_log SET details = :d, prev_hash = :p, entry_hash = :h WHERE seq = :s",
                   d=details, p=prev, h=digest, s=row.seq)
        prev = digest
    problems, _ = verify_chain()
    assert problems == ["audit log: entry #4 is not the one the check of "
                        f"{audit.read_anchor()['checked_at']} saw (the chain was rewritten up to it)"]


def test_a_passing_check_shows_on_the_dashboard_and_the_log_page(app, client, login_as, producer):
    from filmfund.rewards import ledger_check

    _entries(3)
    assert ledger_check.check_ledger(record="cli") == []
    staff = login_as(client, producer)
    dashboard = staff.get("/admin/").get_data(as_text=True)
    assert "The audit log's chain is whole" in dashboard and "audit log entries" in dashboard
    assert "Chain whole" in staff.get("/admin/audit").get_data(as_text=True)


def test_two_writers_never_fork_the_chain(app):
    """Many threads, each its own connection, append at once: one chain, no gap, no fork."""
    if db.engine.dialect.name == "sqlite":
        db.engine.dispose()
    writers, each = 8, 15
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            with app.app_context():
                start.wait()
                for i in range(each):
                    for attempt in range(50):
                        try:
                            record_audit("settings.change", f"writer {n}", {"i": i}, actor="system")
                            db.session.commit()
                            break
                        except sa.exc.OperationalError:  # SQLite's "database is locked": try again
                            db.session.rollback()
                    else:
                        raise AssertionError("never wrote")
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert verify_chain() == ([], writers * each)
    seqs = db.session.scalars(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, writers * each + 1))
