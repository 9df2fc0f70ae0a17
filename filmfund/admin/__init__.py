"""Producer and partner dashboards: views call services only."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund.admin import audit_views, donations_views, views

    app.register_blueprint(views.bp)
    app.register_blueprint(audit_views.bp)
    app.register_blueprint(donations_views.bp)
