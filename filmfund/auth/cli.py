import sys

import click
from flask.cli import AppGroup

from filmfund.auth import services
from filmfund.auth.models import Role
from filmfund.errors import DomainError
from filmfund.extensions import db

users = AppGroup("users", help="Manage users and their roles.")
tokens = AppGroup("tokens", help="Manage API tokens.")


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read a password from standard input.")
def create_user(email: str, role: str, password_stdin: bool) -> None:
    """Create the user, or give an existing one ROLE."""
    try:
        user = services.get_or_create_user(email, role)
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            services.set_password(user, password)
        db.session.commit()
    except DomainError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    click.echo(f"{user.email}: {', '.join(sorted(user.role_names))}")


@tokens.command("create")
@click.argument("email")
def create_token(email: str) -> None:
    """Print a new API token for EMAIL, alone on stdout."""
    try:
        click.echo(services.create_api_token(email))
    except DomainError as err:
        raise click.ClickException(err.message) from None
