"""Campaign, pledges, Stripe, the ledger and the rewards donors are entitled to."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund import i18n
    from filmfund.auth import links
    from filmfund.extensions import csrf
    from filmfund.rewards import (  # noqa: F401  (tables; tasks: queue)
        api, booking_listener, cli, donations_api, donor_api, donors, ledger_check, models, receipts, refund_notices,
        tasks, totals, webhooks)

    i18n.keep_languages_in(donors.ProfileLanguages())  # the core asks the profile without importing rewards
    links.mailbox_proven.connect(receipts.on_mailbox_proven)  # a sign-in by a mailed link: refused receipts again
    from filmfund.rewards.campaign import current_title

    links.name_sign_in_mail_by(current_title)  # the sign-in mail names the film, not this software
    app.extensions["filmfund.book_waiting_events"] = booking_listener.catch_up  # jobs.work_burst

    csrf.exempt(api.bp)
    csrf.exempt(donor_api.bp)
    csrf.exempt(donations_api.bp)
    csrf.exempt(webhooks.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(donor_api.bp)
    app.register_blueprint(donations_api.bp)

    @app.context_processor
    def _money_mode() -> dict:
        """Pages label test money as such (templates read `money_live`)."""
        from filmfund.rewards.ledger import money_mode

        return {"money_live": money_mode()}

    app.register_blueprint(webhooks.bp)
    for group in (cli.campaign, cli.ledger, cli.demo):
        app.cli.add_command(group)
