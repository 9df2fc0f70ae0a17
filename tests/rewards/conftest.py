"""Fixtures of the donations spine: the loaded campaign, signed Stripe events, a fake Stripe API."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards import entitlements
from filmfund.rewards.models import (Donation, Entitlement, LedgerEntry, Payout, Pledge, RefundReport, Subscription,
                                     WebhookEvent)
from filmfund.rewards.totals import CampaignDay, CampaignTotal, DailyTotal, DonorTotal
from filmfund.rewards.webhooks import sign_payload
from tests.helpers import make_pledge
from tests.worker import run_worker


class LedgerClock:
    """The ledger's clock (when an entry is booked), moved by the test: days and months pass in a moment."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(request, monkeypatch):
    """The ledger's clock, set by the test, starting at the test module's START."""
    from filmfund.rewards import ledger

    c = LedgerClock(request.module.START)
    monkeypatch.setattr(ledger, "utcnow", c)
    return c


@pytest.fixture
def campaign(app):
    """The bundled campaign as a Campaign row (the rewards' tests read and change it)."""
    from filmfund.rewards.campaign import configured_slug
    from filmfund.rewards.models import Campaign
    from tests.conftest import load_campaign_into_empty_tables

    load_campaign_into_empty_tables()
    return db.session.scalar(sa.select(Campaign).where(Campaign.slug == configured_slug()))


def make_event(type_: str, obj: dict, *, event_id: str | None = None, livemode: bool = False) -> dict:
    return {"id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event", "api_version": "2024-06-20",
            "created": int(time.time()), "data": {"object": obj}, "livemode": livemode, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": type_}


def session_obj(pledge_id: str, amount: int, *, session_id: str | None = None, payment_status: str = "paid",
                pi: str | None = None, email: str = "donor@example.org", currency: str = "usd") -> dict:
    return {"id": session_id or f"cs_test_{pledge_id}", "object": "checkout.session", "amount_total": amount,
            "amount_subtotal": amount, "client_reference_id": pledge_id, "currency": currency,
            "customer_details": {"email": email, "name": None}, "customer_email": email, "livemode": False,
            "metadata": {"pledge_id": pledge_id}, "mode": "payment", "payment_intent": pi or f"pi_{pledge_id}",
            "payment_status": payment_status, "status": "complete"}


def charge_obj(pi: str, amount: int, refunded: int) -> dict:
    return {"id": f"ch_{pi}", "object": "charge", "amount": amount, "amount_refunded": refunded,
            "currency": "usd", "livemode": False, "payment_intent": pi, "refunded": refunded >= amount}


def dispute_obj(pi: str, amount: int, status: str) -> dict:
    return {"id": f"dp_{pi}", "object": "dispute", "amount": amount, "charge": f"ch_{pi}", "currency": "usd",
            "livemode": False, "payment_intent": pi, "status": status, "reason": "general"}


def start_books_afresh() -> None:
    """Every example of a property test starts from empty books: the money rows and the running
    totals that sum them go together (children first), committed."""
    for model in (Entitlement, LedgerEntry, Payout, DonorTotal, DailyTotal, CampaignDay, CampaignTotal, RefundReport,
                  Donation, Subscription, WebhookEvent, Pledge):
        db.session.execute(sa.delete(model))
    db.session.commit()


def replay_against_model(stripe_events, campaign, events, email: str, model, *, also=None) -> None:
    """Send each (key, kind, value, (event type, object)) in order, booked by the worker, and after
    each check that the partner's statement and the donor's tier are what `model` (money_model's
    Ledger, fed the same steps) says; `also(books)` adds a check of the caller's. The ledger check
    is clean at the end."""
    from filmfund.auth.services import find_user
    from filmfund.rewards import ledger_check
    from filmfund.rewards.payments import partner_statement

    books = model.Ledger()
    for key, kind, value, event in events:
        stripe_events.send(*event)
        books.apply(key, kind, value)
        statement = partner_statement(campaign)
        moment = (statement["gross"], statement["refunded"], statement["net"], statement["share_due"])
        assert moment == (books.gross, books.refunded, books.net, model.share_due(books.net)), (kind, value)
        if also is not None:
            also(books)
        donor = find_user(email)
        if donor is not None:
            held = entitlements.donor_entitlements(donor)["tier"]
            assert (held["min_amount"] if held else None) == model.tier(books.net)
    assert ledger_check.check_ledger() == []


class Stripe:
    """Posts signed events to the app the way Stripe does; then, unless `book=False`, a burst
    worker runs the queue (production's path: the request stores and answers, a worker books)."""

    def __init__(self, app, client):
        self.app, self.client = app, client

    def post(self, event: dict | bytes, *, secret: str | None = None, t: int | None = None, header=None,
             book: bool = True):
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        sig = header if header is not None else sign_payload(payload, secret or self.app.config["STRIPE_WEBHOOK_SECRET"], t)
        response = self.client.post("/webhooks/stripe", data=payload,
                                    headers={"Stripe-Signature": sig, "Content-Type": "application/json"})
        if book:
            run_worker(self.app)
        return response

    def send(self, type_: str, obj: dict, **kw) -> str:
        """Post a new event, let the worker book it; returns the stored event's status then."""
        event = make_event(type_, obj, **kw)
        response = self.post(event)
        assert response.status_code == 200, response.get_data(as_text=True)
        return db.session.scalar(sa.select(WebhookEvent.status).where(WebhookEvent.event_id == event["id"])).value

    def pay(self, amount: int, email: str):
        """A new pledge paid through its Checkout (booked): (the pledge, its payment intent's id)."""
        p = make_pledge(amount, email=email)
        pi = f"pi_{p.id}"
        assert self.send("checkout.session.completed", session_obj(
            p.id, amount, session_id=p.checkout_session_id, pi=pi, email=email)) == "processed"
        return p, pi


@pytest.fixture
def stripe_events(app, client):
    return Stripe(app, client)


@pytest.fixture
def crash_first_booking(monkeypatch):
    """The first booking dies half-way (after its entries, in the entitlements' refresh), as a
    killed worker or a lost database would leave it; later bookings run normally."""
    real = entitlements.refresh_entitlements
    calls = []

    def crash_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the booking's process died")
        return real(*args)

    monkeypatch.setattr(entitlements, "refresh_entitlements", crash_once)


@pytest.fixture
def pledge(campaign):
    """make(amount, email=..., **kw) -> a pending test-mode pledge."""

    def _make(amount: int = 5000, email: str = "donor@example.org", **kw):
        return make_pledge(amount, email=email, **kw)

    return _make


# ------------------------------------------------------------------ a fake Stripe API on loopback

class FakeStripe:
    """Records what the stripe library really sends; replays saved responses per Idempotency-Key
    (as Stripe does) and can fail the next N requests with a given status."""

    def __init__(self):
        self.requests: list[dict] = []
        self.sessions: dict[str, dict] = {}
        self.by_key: dict[str, tuple[int, dict]] = {}
        self.fail_next: list[int] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(body, keep_blank_values=True))
                key = self.headers.get("Idempotency-Key")
                with fake.lock:
                    fake.requests.append({"path": self.path, "form": form, "idempotency_key": key,
                                          "authorization": self.headers.get("Authorization"),
                                          "at": time.monotonic()})
                    if fake.fail_next and fake.fail_next[0] == 429:  # Stripe's rate limiter (nothing saved)
                        status, doc = fake.fail_next.pop(0), {"error": {
                            "type": "invalid_request_error", "code": "rate_limit",
                            "message": "Request rate limit exceeded. Learn more about rate limits here "
                                       "https://stripe.com/docs/rate-limits."}}
                    elif fake.fail_next:
                        status, doc = fake.fail_next.pop(0), {"error": {"type": "api_error", "message": "boom"}}
                    elif key in fake.by_key:
                        status, doc = fake.by_key[key]
                    elif self.path == "/v1/checkout/sessions":
                        sid = f"cs_test_fake_{uuid.uuid4().hex}"
                        doc = {"id": sid, "object": "checkout.session", "url": f"https://checkout.example/{sid}",
                               "mode": form.get("mode"), "client_reference_id": form.get("client_reference_id"),
                               "payment_status": "unpaid", "status": "open"}
                        fake.sessions[sid] = doc
                        status = 200
                        fake.by_key[key] = (status, doc)
                    elif self.path == "/v1/refunds":  # Stripe's Refund object (stripe/fixtures3.json)
                        doc = {"id": f"re_fake_{uuid.uuid4().hex[:16]}", "object": "refund",
                               "amount": int(form.get("amount") or 0), "currency": "usd",
                               "payment_intent": form.get("payment_intent"), "status": "succeeded",
                               "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
                        status = 200
                        fake.by_key[key] = (status, doc)
                    else:
                        status, doc = 404, {"error": {"type": "invalid_request_error", "message": "no route"}}
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:12]}")
                self.end_headers()
                self.wfile.write(raw)

            def do_DELETE(self):
                """Cancelling a subscription (`DELETE /v1/subscriptions/{id}`): answered canceled."""
                with fake.lock:
                    fake.requests.append({"path": self.path, "method": "DELETE", "form": {},
                                          "idempotency_key": self.headers.get("Idempotency-Key"),
                                          "authorization": self.headers.get("Authorization"),
                                          "at": time.monotonic()})
                    if fake.fail_next:
                        status, doc = fake.fail_next.pop(0), {"error": {"type": "api_error", "message": "boom"}}
                    elif self.path.startswith("/v1/subscriptions/"):
                        status, doc = 200, {"id": self.path.rsplit("/", 1)[1], "object": "subscription",
                                            "status": "canceled"}
                    else:
                        status, doc = 404, {"error": {"type": "invalid_request_error", "message": "no route"}}
                raw = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def to(self, path: str) -> list[dict]:
        """The requests received at one path, in order."""
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_stripe(app):
    with FakeStripe() as fake:
        app.config.update(STRIPE_SECRET_KEY="sk_test_fake", STRIPE_TEST_MODE=False, STRIPE_API_BASE=fake.url)
        yield fake
