"""Issue 16.6: the test-payment guard lives in the application, whatever WSGI server runs it.

Without a Stripe key and without FILMFUND_TEST_PAYMENTS, the local test checkout (its page and
its "pay" buttons) answers only a client on this machine that asked for this machine by name:
a public visitor, or a reverse proxy on this machine forwarding a public Host, books nothing.
"""
from __future__ import annotations

import threading

import pytest
import requests
from werkzeug.serving import make_server

from filmfund.extensions import db
from filmfund.rewards import pledges
from tests.helpers import make_pledge
from tests.site.helpers import CSRF_RE

PUBLIC = {"REMOTE_ADDR": "203.0.113.9"}


def _state(pledge_id: str) -> str:
    db.session.expire_all()
    return pledges.get_pledge(pledge_id).state.value


def _try_to_pay(client, pledge_id: str, **kw):
    html = client.get("/", **kw).get_data(as_text=True)  # the form's token, for the same Host (its cookie)
    token = CSRF_RE.search(html).group(1)
    return client.post(f"/checkout/test/{pledge_id}", data={"csrf_token": token, "outcome": "paid"}, **kw)


@pytest.mark.parametrize("where", [
    {"environ_base": PUBLIC},                                              # a public visitor
    {"environ_base": PUBLIC, "headers": {"Host": "127.0.0.1:5000"}},        # who names loopback as Host
    {"headers": {"Host": "fund.example.org"}},                             # a local proxy, public Host
    {"environ_base": {"REMOTE_ADDR": "10.0.0.5"}, "headers": {"Host": "localhost"}},  # the LAN
])
def test_a_test_payment_from_elsewhere_is_refused(app, client, campaign, where):
    pledge = make_pledge(amount=2500, email="free@example.org")
    page = client.get(f"/checkout/test/{pledge.id}", **where)
    assert page.status_code == 403
    assert "FILMFUND_TEST_PAYMENTS" in page.get_data(as_text=True)
    assert _try_to_pay(client, pledge.id, **where).status_code == 403
    assert _state(pledge.id) == "pending"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:5000", "[::1]:8000"])
def test_this_machine_pays_with_test_money(app, client, campaign, host):
    pledge = make_pledge(amount=2500, email="local@example.org")
    assert client.get(f"/checkout/test/{pledge.id}", headers={"Host": host}).status_code == 200
    assert _try_to_pay(client, pledge.id, headers={"Host": host}).status_code == 303
    assert _state(pledge.id) == "paid"


def test_a_staging_server_says_so_with_the_setting(app, client, campaign):
    app.config["TEST_PAYMENTS"] = True
    pledge = make_pledge(amount=2500, email="staging@example.org")
    where = {"environ_base": PUBLIC, "headers": {"Host": "staging.example.org"}}
    assert _try_to_pay(client, pledge.id, **where).status_code == 303
    assert _state(pledge.id) == "paid"


def test_the_guard_holds_under_another_wsgi_server(app, campaign):
    """Not `filmfund run`: a plain WSGI server on loopback behind which a proxy passes a public Host."""
    pledge = make_pledge(amount=2500, email="gunicorn@example.org")
    db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        public = requests.get(f"{base}/checkout/test/{pledge.id}", headers={"Host": "fund.example.org"}, timeout=10)
        local = requests.get(f"{base}/checkout/test/{pledge.id}", timeout=10)
    finally:
        server.shutdown()
        thread.join(5)
    assert public.status_code == 403 and local.status_code == 200
    assert _state(pledge.id) == "pending"
