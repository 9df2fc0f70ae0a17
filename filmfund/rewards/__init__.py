"""Campaign, pledges, Stripe, the ledger and the rewards donors are entitled to."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass
