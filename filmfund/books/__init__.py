"""Open books: where the money went (expenses against the campaign file's budget lines, with
private receipts, and the public transparency page), and the partner's monthly statements as a
page, a CSV and a PDF.

Money raised and the partner's share are the rewards component's (its ledger and
rewards/statements.py, which also holds the partner's hold-back); this component spends, shows
and prints. Receipts live in the media storage, reachable only through a producer's checked link.
"""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund.books import api, expenses, models, views  # noqa: F401  (models: tables; api: its routes)
    from filmfund.media.common import stored_key_in_use

    stored_key_in_use.connect(expenses.receipt_refers_to)  # a receipt's object is not footage's to delete

    app.register_blueprint(views.bp)
    app.register_blueprint(views.public_bp)
    from filmfund.extensions import csrf

    csrf.exempt(api.bp)  # bearer tokens only: no ambient credential
    app.register_blueprint(api.bp)
    from datetime import datetime

    app.add_template_filter(datetime.fromisoformat, "fromiso")
