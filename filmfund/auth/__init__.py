"""Users, roles, API tokens, password and magic-link sign-in."""
from flask import Flask


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund.auth import cli, views  # noqa: F401
    from filmfund.auth.services import email_for_people, load_user_from_session
    from filmfund.extensions import login_manager

    login_manager.user_loader(load_user_from_session)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    app.register_blueprint(views.bp)
    app.add_template_filter(email_for_people, "email")  # every page that shows an address asks it
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
