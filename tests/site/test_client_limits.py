"""Whom a per-client limit counts (extensions.client_key): an IPv6 client by its /64, since a home
line or a server holds a whole /64 and could take a fresh address for every request."""
from __future__ import annotations

import re

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _pledges(client, addresses) -> list[int]:
    return [client.post("/api/v1/pledges", json={"amount": 100, "email": f"spam{i}@example.org"},
                        environ_base={"REMOTE_ADDR": ip}).status_code
            for i, ip in enumerate(addresses)]


def test_password_guesses_from_one_ipv6_64_meet_the_limit(client, make_user):
    for i in range(12):
        make_user(f"staff{i}@filmfund.test", "partner")
    token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    codes = [client.post("/login", data={"csrf_token": token, "email": f"staff{i}@filmfund.test",
                                         "password": "wrong-password-guess"},
                         environ_base={"REMOTE_ADDR": f"2001:db8:1:2::{i + 1:x}"}).status_code
             for i in range(12)]  # one /64, a new interface id each try, a new account each try
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429], codes


def test_pledges_from_one_ipv6_64_meet_the_limit_and_another_64_does_not(client, campaign):
    one_64 = _pledges(client, [f"2001:db8:1:2:{i:x}::{i + 1:x}" for i in range(32)])
    assert one_64.count(201) == 30 and one_64[30:] == [429, 429], one_64
    assert _pledges(client, ["2001:db8:1:3::1"]) == [201]  # the neighbour's /64 is another client


def test_an_ipv4_address_mapped_into_ipv6_is_that_ipv4_client(client, campaign):
    codes = _pledges(client, ["198.51.100.7"] * 15 + ["::ffff:198.51.100.7"] * 17)
    assert codes.count(201) == 30 and codes[30:] == [429, 429], codes
