import sys

import click
from flask.cli import AppGroup

from filmfund.auth import services, tokens as token_services
from filmfund.auth.models import Role
from filmfund.errors import DomainError
from filmfund.extensions import db

users = AppGroup("users", help="Manage users and their roles.")
tokens = AppGroup("tokens", help="Manage API tokens.")


def _fail(err: DomainError):
    db.session.rollback()
    raise click.ClickException(err.message) from None


def _read_password(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read a password from standard input.")
def create_user(email: str, role: str, password_stdin: bool) -> None:
    """Create the user, or give an existing one ROLE. Producers and partners need a password."""
    try:
        user = services.ensure_user(email)
        if password_stdin:
            services.set_password(user, sys.stdin.readline().rstrip("\r\n"))
        services.grant_role(user, role)
        db.session.commit()
    except DomainError as err:
        _fail(err)
    click.echo(f"{user.email}: {', '.join(sorted(user.role_names))}")


@users.command("list")
@click.option("--role", type=click.Choice([r.value for r in Role]), help="Only users with this role.")
def list_users(role: str | None) -> None:
    """One line per user: email, roles, password, second factor, last sign-in."""
    for user in services.list_users(role):
        click.echo("\t".join([user.email, ",".join(sorted(user.role_names)) or "-",
                              "password" if user.password_hash else "no-password",
                              "totp" if user.has_totp else "no-totp", _when(user.last_login_at)]))


@users.command("remove-role")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
def remove_role(email: str, role: str) -> None:
    """Take ROLE away from EMAIL (their sessions end)."""
    try:
        user = services.user_by_email(email)
        services.remove_role(user, role)
        db.session.commit()
    except DomainError as err:
        _fail(err)
    click.echo(f"{user.email}: {', '.join(sorted(user.role_names)) or 'no roles'}")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def set_password(email: str, password_stdin: bool) -> None:
    """Set EMAIL's password (asked twice on a terminal, else read from stdin); their sessions end."""
    try:
        user = services.user_by_email(email)
        services.set_password(user, _read_password(password_stdin))
        db.session.commit()
    except DomainError as err:
        _fail(err)
    click.echo(f"{user.email}: password set")


@users.command("reset-totp")
@click.argument("email")
def reset_totp(email: str) -> None:
    """Forget EMAIL's second factor (a lost phone): their next sign-in sets up a new one."""
    try:
        services.reset_totp(services.user_by_email(email))
        db.session.commit()
    except DomainError as err:
        _fail(err)
    click.echo(f"{email}: second factor removed; it is set up again at the next sign-in")


@tokens.command("create")
@click.argument("email")
@click.option("--days", type=int, default=None, help="Lifetime in days (default FILMFUND_TOKEN_TTL_DAYS, 90).")
def create_token(email: str, days: int | None) -> None:
    """Print a new API token for EMAIL, alone on stdout."""
    try:
        click.echo(token_services.create_api_token(email, days=days))
    except DomainError as err:
        _fail(err)


@tokens.command("list")
@click.argument("email", required=False)
def list_tokens(email: str | None) -> None:
    """One line per token (never the token itself): id, email, state, created, expires, last used."""
    try:
        rows = token_services.list_api_tokens(email)
    except DomainError as err:
        _fail(err)
    for row in rows:
        click.echo("\t".join([str(row.id), row.user.email, token_services.token_state(row), _when(row.created_at),
                              _when(row.expires_at), _when(row.last_used_at)]))


@tokens.command("revoke")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke the token with id TOKEN_ID (see `tokens list`): it stops working at once."""
    try:
        row = token_services.revoke_api_token(token_id)
    except DomainError as err:
        _fail(err)
    click.echo(f"token {row.id} of {row.user.email}: revoked")
