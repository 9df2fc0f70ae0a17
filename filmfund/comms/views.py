"""Donor-facing pages of filmfund.comms: thin callers of the use-case modules."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from filmfund.extensions import limiter
from filmfund.rewards import mail_prefs

bp = Blueprint("comms", __name__, template_folder="templates")


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def unsubscribe(token: str):
    """GET asks (a link scanner's visit changes nothing); POST stops that mail at once, whether
    from the page's button or from a mail client's one-click `List-Unsubscribe=One-Click`."""
    if request.method == "GET":
        user, topic = mail_prefs.read_unsubscribe_token(token)
        return render_template("comms/unsubscribe.html", token=token, email=user.email,
                               title=mail_prefs.topic_title(topic), done=False)
    user, topic = mail_prefs.unsubscribe(token, via="one-click" if request.form.get("List-Unsubscribe") else "link")
    return render_template("comms/unsubscribe.html", token=token, email=user.email,
                           title=mail_prefs.topic_title(topic), done=True)
