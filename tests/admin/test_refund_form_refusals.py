"""A refund refused on the donor's page comes back with the focus where the producer mends it
(a11y probe F2): the field the refusal names marked invalid, described by the message (its id)
and focused; a refusal of the whole form focuses the message itself."""
from __future__ import annotations

import re

from tests.helpers import record_offline
from tests.site.helpers import assert_tied, csrf_token, tag_by_id




def _refund(client, gift, **data):
    page = f"/admin/donations/donors/{gift.user_id}"
    form_key = re.search(r'name="form_key" value="([^"]+)"', client.get(page).get_data(as_text=True)).group(1)
    return client.post(f"/admin/donations/{gift.id}/refund",
                       data={"csrf_token": csrf_token(client, page), "form_key": form_key, **data})


def test_a_refused_amount_is_marked_described_and_focused(client, campaign, login_as, producer):
    gift = record_offline("cash@example.org", 5000)
    login_as(client, producer)
    error_id = f"refund-{gift.id}-error"
    for amount, status in (("abc", 400), ("80", 409)):  # not an amount; more than remains
        resp = _refund(client, gift, amount=amount)
        html = resp.get_data(as_text=True)
        assert resp.status_code == status, amount
        assert_tied(html, f"refund-amount-{gift.id}", error_id)
        assert "aria-invalid" not in tag_by_id(html, f"refund-reason-{gift.id}")
        assert html.count("autofocus") == 1


def test_a_refused_reason_is_marked_and_said_without_its_fields_name(client, campaign, login_as, producer):
    gift = record_offline("cash@example.org", 5000)
    login_as(client, producer)
    html = _refund(client, gift, amount="10", reason="x" * 501).get_data(as_text=True)
    field = tag_by_id(html, f"refund-reason-{gift.id}")
    assert 'aria-invalid="true"' in field and f'aria-describedby="refund-{gift.id}-error"' in field
    assert " autofocus" in field and "aria-invalid" not in tag_by_id(html, f"refund-amount-{gift.id}")
    assert re.search(rf'id="refund-{gift.id}-error"[^>]*>At most 500 characters\.</p>', html)  # not "reason: ..."


def test_a_refusal_of_the_whole_form_focuses_its_message(client, campaign, login_as, producer):
    gift = record_offline("cash@example.org", 5000)
    login_as(client, producer)
    page = f"/admin/donations/donors/{gift.user_id}"
    token = csrf_token(client, page)
    assert client.post(f"/admin/donations/{gift.id}/refund", data={"csrf_token": token}).status_code == 303  # all
    resp = client.post(f"/admin/donations/{gift.id}/refund", data={"csrf_token": token, "amount": "1"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and f'id="refund-amount-{gift.id}"' not in html  # nothing left: no form
    error = tag_by_id(html, f"refund-{gift.id}-error")
    assert 'tabindex="-1"' in error and " autofocus" in error
