"""Who may reach what: every route of the app, for every kind of user.

The table below must name every (endpoint, method) in app.url_map: a new route fails this test
until someone decides who may use it. Pages authenticate by session, /api/v1 by bearer token.
Rows 21-22 of reliability.md: a donor asking for what is not theirs gets 404, the charity
partner gets 403, and the partner gets 403 on every write of the staff areas.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from filmfund.extensions import db
from filmfund.rewards.campaign import current_campaign
from filmfund.rewards.models import Donation, Entitlement, Reward
from tests.helpers import make_pledge
from tests.site.helpers import CSRF_RE, pay

ROLES = ("anon", "donor_a", "donor_b", "producer", "partner")
UNKNOWN = "0123456789abcdef0123456789abcdef"


def _all(status):
    return dict.fromkeys(ROLES, status)


def _only(allowed: dict[str, int], anon=302, default=403):
    out = {"anon": anon, **dict.fromkeys(ROLES[1:], default)}
    out.update(allowed)
    return out


DONOR_PAGE = _only({"donor_a": 200, "donor_b": 200})
PRODUCER_PAGE = _only({"producer": 200})
PRODUCER_WRITE = _only({"producer": 400})      # an empty form: refused as invalid, nothing written
STAFF_PAGE = _only({"producer": 200, "partner": 200})

# (endpoint, method) -> (path, body, expected status per role)
MATRIX: dict[tuple[str, str], tuple[str, object, dict[str, int]]] = {
    # public site
    ("site.campaign", "GET"): ("/", None, _all(200)),
    ("site.pledge", "POST"): ("/pledge", {}, _all(400)),
    ("site.thank_you", "GET"): ("/thank-you?pledge={paid_pledge}", None, _all(200)),  # capability URL, no PII
    ("site.test_checkout", "GET"): ("/checkout/test/{pending_pledge}", None, _all(200)),
    ("site.test_checkout", "POST"): ("/checkout/test/{pending_pledge}", {"outcome": "nonsense"}, _all(400)),
    ("site.account", "GET"): ("/account", None, DONOR_PAGE),
    # the donor's own settings, mail, receipts and data (their own only; refused forms write nothing)
    ("site.account_settings", "POST"): ("/account/settings", {"form": "rewards"},
                                        _only({"donor_a": 400, "donor_b": 400})),
    ("site.account_mail", "POST"): ("/account/mail", {"topic": "no-such-topic"},
                                    _only({"donor_a": 400, "donor_b": 400})),
    ("site.account_receipt", "GET"): ("/account/receipts/{donation_a}", None,
                                      _only({"donor_a": 200, "donor_b": 404})),
    ("site.account_data", "GET"): ("/account/data", None, DONOR_PAGE),
    ("site.account_cancel_subscription", "POST"): ("/account/subscriptions/{subscription_a}/cancel", {},
                                                   _only({"donor_a": 303, "donor_b": 404})),
    ("site.account_data_readable", "GET"): ("/account/data/readable", None, DONOR_PAGE),
    ("site.account_erase", "POST"): ("/account/erase", {}, _only({"donor_a": 400, "donor_b": 400})),
    ("static", "GET"): ("/static/filmfund.css", None, _all(200)),
    ("healthz", "GET"): ("/healthz", None, _all(200)),
    # mail preferences: the token is the credential (forged here: 404 for everyone)
    ("comms.unsubscribe", "GET"): ("/unsubscribe/forged", None, _all(404)),
    ("comms.unsubscribe", "POST"): ("/unsubscribe/forged", {"List-Unsubscribe": "One-Click"}, _all(404)),
    # a donor's mailed settings confirmation: the signed token is the credential (forged: 404)
    ("site.confirm_settings", "GET"): ("/settings/confirm/forged", None, _all(404)),
    ("site.confirm_settings", "POST"): ("/settings/confirm/forged", {}, _all(404)),
    # sign-in
    ("auth.login", "GET"): ("/login", None, _all(200)),
    ("auth.login", "POST"): ("/login", {"email": "nobody@example.org"}, _all(302)),
    ("auth.magic", "GET"): ("/login/magic/not-a-token", None, _all(200)),
    ("auth.magic", "POST"): ("/login/magic/not-a-token", {}, _all(302)),
    ("auth.logout", "POST"): ("/logout", {}, _all(302)),
    # second factor: without a password step just done, back to /login; enrolment for staff
    ("auth.second_factor", "GET"): ("/login/2fa", None, _all(302)),
    ("auth.second_factor", "POST"): ("/login/2fa", {"code": "123456"}, _all(302)),
    ("auth.totp_setup", "GET"): ("/login/2fa/setup", None, _only({"producer": 200, "partner": 200})),
    ("auth.totp_setup", "POST"): ("/login/2fa/setup", {"code": "x"}, _only({"producer": 400, "partner": 400})),
    ("auth.reset_request", "GET"): ("/login/reset", None, _all(200)),
    ("auth.reset_request", "POST"): ("/login/reset", {"email": "nobody@example.org"}, _all(302)),
    ("auth.reset_password", "GET"): ("/login/reset/not-a-token", None, _all(302)),
    ("auth.reset_password", "POST"): ("/login/reset/not-a-token", {"password": "x"}, _all(302)),
    # producer dashboard and partner page
    ("admin.dashboard", "GET"): ("/admin/", None, PRODUCER_PAGE),
    ("site.page_editor", "GET"): ("/admin/page", None, PRODUCER_PAGE),
    ("site.page_save", "POST"): ("/admin/page/story", {}, PRODUCER_WRITE),
    ("site.page_reset", "POST"): ("/admin/page/story/reset", {}, PRODUCER_WRITE),
    ("site.campaign_editor", "GET"): ("/admin/campaign", None, PRODUCER_PAGE),
    ("site.campaign_save", "POST"): ("/admin/campaign/settings", {}, PRODUCER_WRITE),
    ("site.campaign_reset", "POST"): ("/admin/campaign/settings/reset", {}, PRODUCER_WRITE),
    ("site.sharing_report", "GET"): ("/admin/sharing", None, PRODUCER_PAGE),
    ("site.artwork", "GET"): ("/artwork/icon.svg", None, _all(200)),
    ("library.public_file", "GET"): (f"/public/{UNKNOWN}/poster.jpg", None, _all(404)),
    ("library.public_captions", "GET"): (f"/public/{UNKNOWN}/captions/en.vtt", None, _all(404)),
    ("admin.credits_csv", "GET"): ("/admin/credits.csv", None, PRODUCER_PAGE),
    # donations: the list, a donor's page, refunds and the supporters' CSV (producers, never the partner)
    ("donations_admin.list_page", "GET"): ("/admin/donations/", None, PRODUCER_PAGE),
    ("donations_admin.donor_page", "GET"): ("/admin/donations/donors/999999", None, _only({"producer": 404})),
    ("donations_admin.refund", "POST"): ("/admin/donations/999999/refund", {}, _only({"producer": 404})),
    ("donations_admin.resend_receipts", "POST"): ("/admin/donations/donors/999999/receipts", {},
                                                  _only({"producer": 404})),
    ("donations_admin.supporters_csv", "GET"): ("/admin/donations/supporters.csv", None, PRODUCER_PAGE),
    ("admin.offline_donation", "POST"): ("/admin/donations/offline", {}, PRODUCER_WRITE),
    ("admin.record_payout", "POST"): ("/admin/payouts", {}, PRODUCER_WRITE),
    ("admin.reverse_payout", "POST"): ("/admin/payouts/999999/reverse", {"reason": "typo", "once": "matrix"},
                                       _only({"producer": 404})),  # no such payout: nothing reversed
    # production updates (producers write; the archive shows each update to its audience only)
    ("comms.admin_updates", "GET"): ("/admin/updates", None, PRODUCER_PAGE),
    ("comms.create_update", "POST"): ("/admin/updates", {}, PRODUCER_WRITE),
    ("comms.admin_update", "GET"): ("/admin/updates/{draft_update}", None, PRODUCER_PAGE),
    ("comms.edit_update", "POST"): ("/admin/updates/{draft_update}", {}, PRODUCER_WRITE),
    ("comms.publish_update", "POST"): ("/admin/updates/999999/publish", {}, _only({"producer": 404})),
    ("comms.retry_failed_deliveries", "POST"): ("/admin/updates/999999/retry", {}, _only({"producer": 404})),
    ("comms.set_update_versions", "POST"): ("/admin/updates/999999/versions", {}, _only({"producer": 404})),
    # personal rewards: questions ($250), invitations, the $2000 thread; not yours -> 404
    ("comms.questions", "GET"): ("/account/questions", None, DONOR_PAGE),
    ("comms.ask_question", "POST"): ("/account/questions", {}, _only({"donor_a": 400, "donor_b": 400})),
    ("comms.my_question", "GET"): ("/account/questions/999999", None, _only({"donor_a": 404, "donor_b": 404})),
    ("comms.question_clip", "GET"): ("/account/questions/999999/clip", None,
                                     _only({"donor_a": 404, "donor_b": 404})),
    ("comms.admin_questions", "GET"): ("/admin/questions", None, PRODUCER_PAGE),
    ("comms.add_subject", "POST"): ("/admin/questions/subjects", {}, PRODUCER_WRITE),
    ("comms.admin_question", "GET"): ("/admin/questions/999999", None, _only({"producer": 404})),
    ("comms.moderate_question", "POST"): ("/admin/questions/999999/moderate", {}, _only({"producer": 404})),
    ("comms.assign_question", "POST"): ("/admin/questions/999999/assign", {}, _only({"producer": 404})),
    ("comms.answer_question", "POST"): ("/admin/questions/999999/answer", {}, _only({"producer": 404})),
    ("comms.invitations", "GET"): ("/account/invitations", None, DONOR_PAGE),
    ("comms.my_invitation", "GET"): ("/account/invitations/999999", None, _only({"donor_a": 404, "donor_b": 404})),
    ("comms.rsvp", "POST"): ("/account/invitations/999999/rsvp", {}, _only({"donor_a": 404, "donor_b": 404})),
    ("comms.invitation_time_zone", "POST"): ("/account/invitations/999999/time-zone", {},
                                             _only({"donor_a": 404, "donor_b": 404})),
    ("comms.invitation_ics", "GET"): ("/account/invitations/999999/calendar.ics", None,
                                      _only({"donor_a": 404, "donor_b": 404})),
    ("comms.admin_experiences", "GET"): ("/admin/experiences", None, PRODUCER_PAGE),
    ("comms.create_experience", "POST"): ("/admin/experiences", {}, PRODUCER_WRITE),
    ("comms.admin_experience", "GET"): ("/admin/experiences/999999", None, _only({"producer": 404})),
    ("comms.add_slot", "POST"): ("/admin/experiences/999999/slots", {}, _only({"producer": 404})),
    ("comms.send_invitations", "POST"): ("/admin/experiences/999999/invite", {}, _only({"producer": 404})),
    ("comms.thread", "GET"): ("/account/requests", None, DONOR_PAGE),
    ("comms.post_request", "POST"): ("/account/requests", {}, _only({"donor_a": 400, "donor_b": 400})),
    ("comms.admin_requests", "GET"): ("/admin/requests", None, PRODUCER_PAGE),
    ("comms.admin_thread", "GET"): (f"/admin/requests/{UNKNOWN}", None, _only({"producer": 404})),
    ("comms.reply_request", "POST"): (f"/admin/requests/{UNKNOWN}", {}, _only({"producer": 404})),
    ("comms.update_list", "GET"): ("/updates", None, _all(200)),
    ("comms.update_page", "GET"): ("/updates/{insider_update}", None,  # anon: "sign in", nothing of it
                                   {"anon": 401, "donor_a": 200, "donor_b": 200, "producer": 200, "partner": 404}),
    ("comms.update_image", "GET"): (f"/updates/{{insider_update}}/images/{UNKNOWN}", None,
                                    {"anon": 404, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 404}),
    ("admin.entitlement_status", "POST"): ("/admin/entitlements/{entitlement_a}", {}, PRODUCER_WRITE),
    ("admin.partner", "GET"): ("/admin/partner", None, STAFF_PAGE),
    ("audit.log", "GET"): ("/admin/audit", None, PRODUCER_PAGE),
    ("admin.partner_csv", "GET"): ("/admin/partner/statement.csv", None, STAFF_PAGE),
    # open books: expenses (producers), the partner's months and its "received", the public page
    ("books.expenses_page", "GET"): ("/admin/expenses", None, PRODUCER_PAGE),
    ("books.expense_record", "POST"): ("/admin/expenses", {}, PRODUCER_WRITE),
    ("books.expense_correct", "POST"): ("/admin/expenses/999999/correct", {}, _only({"producer": 404})),
    ("books.expense_void", "POST"): ("/admin/expenses/999999/void", {}, _only({"producer": 404})),
    ("books.expense_attach", "POST"): ("/admin/expenses/999999/receipt", {}, _only({"producer": 404})),
    ("books.expense_receipt", "GET"): ("/admin/expenses/999999/receipt", None, _only({"producer": 404})),
    ("books.partner_month", "GET"): ("/admin/partner/statements/2026-01", None, STAFF_PAGE),
    ("books_public.payout_received", "POST"): ("/partner/payouts/999999/received", {}, _only({"partner": 404})),
    ("books_public.transparency_page", "GET"): ("/transparency", None, _all(200)),
    # footage board (producers only)
    ("media.board", "GET"): ("/footage/", None, PRODUCER_PAGE),
    ("media.status", "GET"): ("/footage/status.json", None, PRODUCER_PAGE),
    # an empty upload is refused with a message on the board (flash + redirect), nothing stored
    ("media.upload", "POST"): ("/footage/upload", {}, _only({"producer": 302})),
    ("media.asset_page", "GET"): (f"/footage/{UNKNOWN}", None, _only({"producer": 404})),
    ("media.asset_update", "POST"): (f"/footage/{UNKNOWN}", {}, _only({"producer": 404})),
    ("media.asset_verify", "POST"): (f"/footage/{UNKNOWN}/verify", {}, _only({"producer": 404})),
    ("media.asset_retry", "POST"): (f"/footage/{UNKNOWN}/retry", {}, _only({"producer": 404})),
    ("media.rendition", "GET"): (f"/footage/{UNKNOWN}/r/proxy", None, _only({"producer": 404})),
    ("media.asset_publish", "POST"): (f"/footage/{UNKNOWN}/publish", {}, _only({"producer": 404})),
    ("media.asset_unpublish", "POST"): (f"/footage/{UNKNOWN}/unpublish", {}, _only({"producer": 404})),
    ("media.caption_save", "POST"): (f"/footage/{UNKNOWN}/captions", {}, _only({"producer": 404})),
    ("media.caption_delete", "POST"): (f"/footage/{UNKNOWN}/captions/en/delete", {}, _only({"producer": 404})),
    ("media.caption_file", "GET"): (f"/footage/{UNKNOWN}/captions/en.vtt", None, _only({"producer": 404})),
    ("media.caption_burn", "POST"): (f"/footage/{UNKNOWN}/captions/en/burn", {}, _only({"producer": 404})),
    ("media.caption_burned_file", "GET"): (f"/footage/{UNKNOWN}/captions/en/burned.mp4", None,
                                           _only({"producer": 404})),
    ("media.static", "GET"): ("/footage/static/media.css", None, _all(200)),
    # browser-to-S3 uploads (JSON bodies; a form post is refused as invalid)
    ("media.direct_upload_start", "POST"): ("/footage/uploads/start", {}, PRODUCER_WRITE),
    ("media.direct_upload_parts", "POST"): ("/footage/uploads/parts", {}, PRODUCER_WRITE),
    ("media.direct_upload_complete", "POST"): ("/footage/uploads/complete", {}, PRODUCER_WRITE),
    # resumable uploads to any storage (JSON and raw bodies: a form post is refused as invalid;
    # a forged upload token is unknown: 404)
    ("media.resumable_start", "POST"): ("/footage/uploads/resumable", {}, PRODUCER_WRITE),
    ("media.resumable_upload", "GET"): ("/footage/uploads/resumable/forged", None, _only({"producer": 404})),
    ("media.resumable_append", "PATCH"): ("/footage/uploads/resumable/forged", {}, PRODUCER_WRITE),
    ("media.resumable_complete", "POST"): ("/footage/uploads/resumable/forged/complete", {}, PRODUCER_WRITE),
    # donors' library: not theirs -> 404 for donors, 403 for the charity
    ("library.item", "GET"): (f"/library/{UNKNOWN}", None,
                              {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.play", "GET"): (f"/library/{UNKNOWN}/play", None,
                              {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.poster", "GET"): (f"/library/{UNKNOWN}/poster", None,
                                {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.download", "GET"): ("/library/download/forged.token", None, _all(403)),
    ("library.captions", "GET"): (f"/library/{UNKNOWN}/captions/en.vtt", None,
                                  {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.captions_burned", "GET"): (f"/library/{UNKNOWN}/captions/en/burned.mp4", None,
                                         {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.captions_signed", "GET"): ("/library/captions/forged.token", None, _all(403)),
    # streams (HLS): signed tokens; the library page's player by session; the public trailer's
    ("library.stream_master", "GET"): ("/stream/forged.token/master.m3u8", None, _all(403)),
    ("library.stream_variant", "GET"): ("/stream/forged.token/v0.m3u8", None, _all(403)),
    ("library.stream_segment", "GET"): ("/stream/forged.token/s/v0_0000.ts", None, _all(403)),
    ("library.stream_here", "GET"): (f"/library/{UNKNOWN}/stream.m3u8", None,
                                     {"anon": 302, "donor_a": 404, "donor_b": 404, "producer": 404, "partner": 403}),
    ("library.public_stream_master", "GET"): (f"/public/{UNKNOWN}/hls/master.m3u8", None, _all(404)),
    ("library.public_stream_variant", "GET"): (f"/public/{UNKNOWN}/hls/v0.m3u8", None, _all(404)),
    ("library.public_stream_segment", "GET"): (f"/public/{UNKNOWN}/hls/s/v0_0000.ts", None, _all(404)),
    ("library.screening_page", "GET"): ("/screening", None, _all(200)),
    ("media.screening_report", "GET"): ("/footage/screening", None, PRODUCER_PAGE),
    # API (bearer tokens; never the session)
    ("api.openapi_json", "GET"): ("/api/v1/openapi.json", None, _all(200)),
    ("rewards_api.campaign", "GET"): ("/api/v1/campaign", None, _all(200)),
    ("rewards_api.create_pledge", "POST"): ("/api/v1/pledges", {"amount": 0}, _all(400)),
    ("rewards_api.my_entitlements", "GET"): ("/api/v1/me/entitlements", None, _only(
        {"donor_a": 200, "donor_b": 200}, anon=401)),
    ("donor_api.me", "GET"): ("/api/v1/me", None, _only({"donor_a": 200, "donor_b": 200}, anon=401)),
    ("donor_api.my_subscriptions", "GET"): ("/api/v1/me/subscriptions", None,
                                            _only({"donor_a": 200, "donor_b": 200}, anon=401)),
    ("donor_api.cancel_subscription", "POST"): ("/api/v1/me/subscriptions/{subscription_a}/cancel", None,
                                                _only({"donor_a": 200, "donor_b": 404}, anon=401)),
    ("donor_api.update_me", "PATCH"): ("/api/v1/me", {}, _only({"donor_a": 400, "donor_b": 400}, anon=401)),
    ("donor_api.my_data", "GET"): ("/api/v1/me/data", None, _only({"donor_a": 200, "donor_b": 200}, anon=401)),
    ("donations_api.list_donations", "GET"): ("/api/v1/donations", None, _only({"producer": 200}, anon=401)),
    ("donations_api.refund_donation", "POST"): ("/api/v1/donations/999999/refund", {},
                                                _only({"producer": 404}, anon=401)),
    ("rewards_api.partner_statement", "GET"): ("/api/v1/partner/statement", None, _only(
        {"producer": 200, "partner": 200}, anon=401)),
    ("books_api.transparency_doc", "GET"): ("/api/v1/transparency", None, _all(200)),
    ("books_api.create_expense", "POST"): ("/api/v1/expenses", {}, _only({"producer": 400}, anon=401)),
    ("books_api.month_statement", "GET"): ("/api/v1/partner/statements/2026-01", None, _only(
        {"producer": 200, "partner": 200}, anon=401)),
    ("comms_api.list_updates", "GET"): ("/api/v1/updates", None, _all(200)),
    ("comms_api.create_update", "POST"): ("/api/v1/updates", {}, _only({"producer": 400}, anon=401)),
    ("comms_api.publish_update", "POST"): ("/api/v1/updates/999999/publish", {}, _only({"producer": 404}, anon=401)),
    ("comms_api.set_update_versions", "PUT"): ("/api/v1/updates/999999/translations", {},
                                               _only({"producer": 400}, anon=401)),
    ("media_api.library", "GET"): ("/api/v1/library", None, _only({"donor_a": 200, "donor_b": 200}, anon=401)),
    ("media_api.list_assets", "GET"): ("/api/v1/media/assets", None, _only({"producer": 200}, anon=401)),
    ("media_api.publish_asset", "POST"): (f"/api/v1/media/assets/{UNKNOWN}/publish", {"reward": "stills"},
                                          _only({"producer": 404}, anon=401)),
    ("media_api.unpublish_asset", "POST"): (f"/api/v1/media/assets/{UNKNOWN}/unpublish", {"reward": "stills"},
                                            _only({"producer": 404}, anon=401)),
    ("media_api.set_asset_title_versions", "PUT"): (f"/api/v1/media/assets/{UNKNOWN}/translations",
                                                    {"translations": {}}, _only({"producer": 404}, anon=401)),
    ("media_api.put_captions", "PUT"): (f"/api/v1/media/assets/{UNKNOWN}/captions/en", {},
                                        _only({"producer": 404}, anon=401)),
    ("media_api.get_captions", "GET"): (f"/api/v1/media/assets/{UNKNOWN}/captions/en", None,
                                        _only({"producer": 404}, anon=401)),
    ("media_api.delete_captions", "DELETE"): (f"/api/v1/media/assets/{UNKNOWN}/captions/en", None,
                                              _only({"producer": 404}, anon=401)),
    ("rewards_webhooks.stripe_webhook", "POST"): ("/webhooks/stripe", {}, _all(400)),  # unsigned
    # fulfilment: the donor's address, parcels and credits proof (their own only)
    ("fulfil.address", "GET"): ("/account/address", None, DONOR_PAGE),
    ("fulfil.address", "POST"): ("/account/address", {}, _only({"donor_a": 400, "donor_b": 400})),
    ("fulfil.item_received", "POST"): ("/account/items/{item_a}/received", {},  # not shipped yet / not theirs
                                       _only({"donor_a": 409, "donor_b": 404})),
    ("fulfil.proof", "GET"): ("/account/credits", None, DONOR_PAGE),
    ("fulfil.proof", "POST"): ("/account/credits", {}, _only({"donor_a": 400, "donor_b": 400})),
    ("fulfil.survey", "GET"): ("/rewards/survey/forged.token", None, _all(404)),  # the mailed link is the key
    ("fulfil.survey", "POST"): ("/rewards/survey/forged.token", {}, _all(404)),
    # fulfilment: producers (a refused form comes back as a message on the page: flash + redirect)
    ("fulfil_admin.queues", "GET"): ("/admin/rewards", None, PRODUCER_PAGE),
    ("fulfil_admin.queue", "GET"): ("/admin/rewards/dvd", None, PRODUCER_PAGE),
    ("fulfil_admin.schedule", "POST"): ("/admin/rewards/dvd/schedule", {}, _only({"producer": 303})),
    ("fulfil_admin.item", "POST"): ("/admin/rewards/items/{item_a}", {}, _only({"producer": 400})),
    ("fulfil_admin.packing_list", "GET"): ("/admin/rewards/packing-list.csv", None, PRODUCER_PAGE),
    ("fulfil_admin.surveys", "POST"): ("/admin/rewards/surveys", {}, _only({"producer": 303})),
    ("fulfil_admin.credits_page", "GET"): ("/admin/credits", None, PRODUCER_PAGE),
    ("fulfil_admin.credits_freeze", "POST"): ("/admin/credits/freeze", {}, _only({"producer": 303})),
    ("fulfil_admin.credits_deadline", "POST"): ("/admin/credits/deadline", {"deadline": "soon"},
                                                _only({"producer": 303})),
    ("fulfil_admin.credits_proofs", "POST"): ("/admin/credits/proofs", {}, _only({"producer": 303})),
    ("fulfil_admin.credits_txt", "GET"): ("/admin/credits.txt", None, PRODUCER_PAGE),
    ("fulfil_admin.credits_roll", "POST"): ("/admin/credits/roll", {}, _only({"producer": 303})),
    ("fulfil_admin.credits_roll_status", "GET"): ("/admin/credits/roll.json", None, PRODUCER_PAGE),
    ("fulfil_admin.credits_roll_file", "GET"): ("/admin/credits/roll.mp4", None, _only({"producer": 404})),
}


def _routes(app) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_classified(app):
    routes = _routes(app)
    undeclared = sorted(routes - set(MATRIX))
    assert not undeclared, f"classify these routes in MATRIX (who may use them?): {undeclared}"
    gone = sorted(set(MATRIX) - routes)
    assert not gone, f"these routes no longer exist; remove them from MATRIX: {gone}"


@pytest.fixture
def world(app, make_user):
    """Two donors with paid gifts, a producer and a partner; ids the URLs need."""
    paid = pay(5000, "donor-a@example.org", credit_name="Donor A")
    pay(3000, "donor-b@example.org", credit_name="Donor B")
    pending = make_pledge(amount=1500, email="donor-a@example.org")
    monthly = make_pledge(amount=1000, email="donor-a@example.org", interval="month")
    from filmfund.rewards.models import Subscription
    from filmfund.rewards.webhooks import complete_test_checkout

    complete_test_checkout(monthly.id, "paid")
    users = {"donor_a": make_user("donor-a@example.org", "donor"),
             "donor_b": make_user("donor-b@example.org", "donor"),
             "producer": make_user("producer@filmfund.test", "producer"),
             "partner": make_user("partner@xinxing.test", "partner")}
    ent = db.session.scalar(sa.select(Entitlement).join(Reward).where(
        Entitlement.user_id == users["donor_a"].id, Reward.key == "dvd"))
    from filmfund.comms import updates
    from filmfund.fulfil import fulfilment
    from filmfund.fulfil.models import FulfilmentItem

    draft = updates.create_update(title="Draft", body="Not yet.", audience="everyone")
    insider = updates.create_update(title="For insiders", body="Stills soon.", audience="stills")
    updates.publish_update(insider.id)
    db.session.commit()
    fulfilment.sync_items(current_campaign())
    db.session.commit()
    item = db.session.scalar(sa.select(FulfilmentItem).where(FulfilmentItem.entitlement_id == ent.id))
    ids = {"paid_pledge": paid.id, "pending_pledge": pending.id, "entitlement_a": ent.id,
           "draft_update": draft.id, "insider_update": insider.id, "item_a": item.id,
           "donation_a": db.session.scalar(sa.select(Donation.id).where(Donation.pledge_id == paid.id)),
           "subscription_a": db.session.scalar(sa.select(Subscription.id).where(Subscription.pledge_id == monthly.id))}
    return users, ids


def _request(app, role, users, token_for, login_as, method, path, body):
    client = app.test_client()
    headers = {}
    if path.startswith("/api/"):
        if role != "anon":
            headers.update(token_for(users[role]))
        if method == "GET":
            return client.get(path, headers=headers)
        return client.open(path, method=method, json=body, headers=headers)
    if role != "anon":
        db.session.refresh(users[role])  # a logout in an earlier check bumped the session version
        login_as(client, users[role])
    if method == "GET":
        return client.get(path)
    data = dict(body or {})
    if not path.startswith("/webhooks/"):
        data["csrf_token"] = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    return client.open(path, method=method, data=data)


def test_access_matrix(app, world, token_for, login_as):
    users, ids = world
    failures = []
    for (endpoint, method), (path, body, expected) in sorted(MATRIX.items()):
        url = path.format(**ids)
        for role in ROLES:
            status = _request(app, role, users, token_for, login_as, method, url, body).status_code
            if status != expected[role]:
                failures.append(f"{method} {url} as {role}: {status}, expected {expected[role]}")
    assert not failures, "\n".join(failures)


def test_partner_is_refused_every_write_in_staff_areas(app, world, token_for, login_as):
    users, ids = world
    writes = [(e, m) for (e, m), (path, _, _) in MATRIX.items()
              if m != "GET" and path.startswith(("/admin", "/footage", "/api/v1/media"))]
    assert len(writes) >= 8
    for endpoint, method in writes:
        path, body, _ = MATRIX[(endpoint, method)]
        resp = _request(app, "partner", users, token_for, login_as, method, path.format(**ids), body)
        assert resp.status_code == 403, (endpoint, method, resp.status_code)


def test_api_never_authenticates_by_session_cookie(app, world, login_as):
    users, _ = world
    client = login_as(app.test_client(), users["producer"])
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/partner/statement").status_code == 401
