"""The public site: the campaign page, pledging, checkout return pages, the donor's account."""
from flask import Flask


def init_app(app: Flask) -> None:
    from filmfund.site import views

    app.register_blueprint(views.bp)
