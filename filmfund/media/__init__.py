"""Footage: ingest, fixity, diagnosis, transcoding and tracking of every clip."""
from flask import Flask


def init_app(app: Flask) -> None:
    from filmfund.media import views

    app.register_blueprint(views.bp)
