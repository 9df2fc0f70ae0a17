"""Talking with donors: production updates, mail preferences (unsubscribe), questions to the
interview subjects, experience invitations and the $2000 tier's request thread."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    # routes, tables, and the queue: tasks.py's periodic tasks, and each use case's own tasks
    from filmfund.comms import (  # noqa: F401
        api, arrangements, invitations, models, questions, reward_views, tasks, updates, views)
    from filmfund.extensions import csrf
    from filmfund.rewards import donor_data

    from filmfund.rewards import signals

    # Erasure (rewards.donor_data.erase_donor) takes the donor's own words: their questions and thread.
    signals.donor_erasing.connect(questions.erase_questions)
    signals.donor_erasing.connect(arrangements.erase_thread)
    # The donor's readable export says a question's state as the donor's questions page does.
    donor_data.describe_codes("questions", "state", questions.STATE_WORDS)

    csrf.exempt(api.bp)
    # Any page that shows an update asks this for its text in the reader's language (updates.version)
    app.add_template_global(updates.version, "update_version")
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    # RFC 8058: a mail client POSTs the one-click unsubscribe with no cookie and no CSRF token;
    # the unguessable token in the URL is the only credential, and it can only stop mail.
    csrf.exempt(views.unsubscribe)
