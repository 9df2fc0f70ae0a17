"""Users, roles, API tokens, password and magic-link sign-in."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from flask_babel import lazy_gettext as _l

    from filmfund.auth import cli, views
    from filmfund.auth.services import email_for_people
    from filmfund.extensions import login_manager

    login_manager.user_loader(views.signed_in_user)
    login_manager.login_view = "auth.login"
    # In the reader's language: made a str when flashed (a lazy string cannot be kept in the session).
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.localize_callback = str
    app.register_blueprint(views.bp)
    app.add_template_filter(email_for_people, "email")  # every page that shows an address asks it
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
