"""Users, roles, API tokens, password and magic-link sign-in."""
from flask import Flask


def init_app(app: Flask) -> None:
    from filmfund.auth import cli, views  # noqa: F401
    from filmfund.auth.services import load_user_from_session
    from filmfund.extensions import login_manager

    login_manager.user_loader(load_user_from_session)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see that page."
    app.register_blueprint(views.bp)
    app.cli.add_command(cli.users)
    app.cli.add_command(cli.tokens)
