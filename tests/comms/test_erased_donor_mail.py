"""After a donor erases their data, "nothing more is mailed, ever" (donor_data.erase_donor), through
the real relay: the rule's one home is mail.send_mail (the erased address's domain), asked by every
mail whichever use case sends it. Each kind of donor mail that can still find an erased donor
is tried here: an invitation to an experience they still hold, the notice of an answer to the
question they asked, the producers' reply in the $2000 thread, a receipt for a Checkout paid
after the erasure, a gift made with the placeholder address, a sign-in link asked for it."""
from __future__ import annotations

from datetime import timedelta

from filmfund.auth import links
from filmfund.auth.services import find_user
from filmfund.comms import arrangements, invitations, questions
from filmfund.db import utcnow
from filmfund.extensions import db
from filmfund.mail import ERASED_DOMAIN
from filmfund.rewards import donor_data
from filmfund.rewards.webhooks import complete_test_checkout
from tests.comms.conftest import smtp  # noqa: F401  (the real SMTP server the app sends through)
from tests.helpers import make_pledge
from tests.site.helpers import pay
from tests.worker import run_worker


def _donor(amount: int, address: str):
    pay(amount, address)
    return find_user(address)


def _erase(app, user, smtp) -> str:  # noqa: F811
    """Erase the donor, then forget what was mailed before (their receipts)."""
    run_worker(app)  # whatever was queued before goes before
    donor_data.erase_donor(user)
    db.session.commit()
    assert user.email.endswith("@" + ERASED_DOMAIN)
    smtp.envelopes.clear()
    return user.email


def _mailed(app, smtp) -> list[str]:  # noqa: F811
    """Who was mailed since the erasure: at once, or by the worker's jobs."""
    run_worker(app)
    return [rcpt for envelope in smtp.envelopes for rcpt in envelope.rcpt_tos]


def test_no_invitation_goes_to_an_erased_holder(app, campaign, smtp):  # noqa: F811
    gone = _donor(50000, "gone@example.org")  # $500: the dinner, still held (the money stays)
    _donor(50000, "stays@example.org")
    _erase(app, gone, smtp)
    exp = invitations.create_experience(reward_key="dinner-invitation", title="Dinner with the crew")
    invitations.add_slot(exp.id, utcnow() + timedelta(days=20))
    invitations.send_invitations(exp.id)
    db.session.commit()
    assert _mailed(app, smtp) == ["stays@example.org"]


def test_no_answer_notice_goes_to_an_erased_asker(app, campaign, smtp):  # noqa: F811
    """The notice quotes nothing, but names the interview subject and is a mail all the same."""
    gone = _donor(25000, "gone@example.org")  # $250: questions
    question = questions.submit_question(gone, "Where did you look first?")
    db.session.commit()
    questions.moderate(question.id, "approve")
    questions.assign(question.id, questions.add_subject("Mrs. Li", "zh").id)
    db.session.commit()
    _erase(app, gone, smtp)
    questions.record_answer(question.id, original="火车站。", original_status="final", english="The station.",
                            english_status="final")
    db.session.commit()
    assert _mailed(app, smtp) == []


def test_no_reply_notice_goes_to_an_erased_donor_of_the_thread(app, campaign, smtp, producer):  # noqa: F811
    gone = _donor(200000, "gone@example.org")  # $2000: the private thread
    arrangements.post_as_donor(gone, "Could we meet in Shenzhen?")
    db.session.commit()
    _erase(app, gone, smtp)
    arrangements.post_as_producer(producer, gone.public_id, "Of course: in March.")
    db.session.commit()
    assert _mailed(app, smtp) == []


def test_no_receipt_for_a_checkout_paid_after_the_erasure(app, campaign, smtp):  # noqa: F811
    """A Checkout opened before the erasure and paid after it books the gift (the money is kept)
    on the erased donor, whose receipt would go to the placeholder."""
    gone = _donor(2000, "gone@example.org")
    late = make_pledge(amount=3000, email="gone@example.org")
    db.session.commit()
    placeholder = _erase(app, gone, smtp)
    complete_test_checkout(late.id, "paid")
    assert _mailed(app, smtp) == []
    # ... and the gift made with the placeholder address by anyone else is not mailed there either.
    pay(1500, placeholder)
    assert _mailed(app, smtp) == []


def test_no_sign_in_link_goes_to_an_erased_address(app, campaign, smtp):  # noqa: F811
    placeholder = _erase(app, _donor(2000, "gone@example.org"), smtp)
    with app.test_request_context("/login"):
        links.request_login_link(placeholder)
    assert _mailed(app, smtp) == []


def test_a_donor_not_erased_is_mailed_as_before(app, campaign, smtp):  # noqa: F811
    """The same paths, for a donor beside the erased one: the rule takes nobody else's mail."""
    _erase(app, _donor(2000, "gone@example.org"), smtp)
    stays = _donor(25000, "stays@example.org")
    question = questions.submit_question(stays, "Where did you look first?")
    db.session.commit()
    run_worker(app)
    smtp.envelopes.clear()  # her receipt
    questions.moderate(question.id, "approve")
    questions.assign(question.id, questions.add_subject("Mrs. Li", "zh").id)
    questions.record_answer(question.id, original="火车站。", original_status="final", english="The station.",
                            english_status="final")
    db.session.commit()
    assert _mailed(app, smtp) == ["stays@example.org"]
