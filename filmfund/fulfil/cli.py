"""CLI: `filmfund rewards remind` and `filmfund credits render` (the export is `filmfund credits export`)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

rewards = click.Group("rewards", help="Delivering the rewards.")


def credits_group() -> click.Group:
    """`filmfund credits`: the rewards component's group (export) with this one's freeze and render."""
    from filmfund.rewards.cli import credits

    credits.add_command(freeze_command)
    credits.add_command(render_command)
    return credits


@rewards.command("remind")
@with_appcontext
def remind_command() -> None:
    """Mail the address surveys and credits proofs that are due (first mails and reminders)."""
    from filmfund.fulfil import credits, fulfilment
    from filmfund.rewards.campaign import current_campaign

    campaign = current_campaign()
    click.echo(f"address surveys sent: {fulfilment.send_address_surveys(campaign)}")
    click.echo(f"credits proofs sent: {credits.send_proofs(campaign)}")


@click.command("freeze")
@click.option("--by", "actor", default="cli", show_default=True, help="Who froze it (for the record).")
@with_appcontext
def freeze_command(actor: str) -> None:
    """Picture lock: freeze the credits as they stand (later changes are flagged)."""
    from filmfund.fulfil import credits
    from filmfund.rewards.campaign import current_campaign

    state = credits.freeze(current_campaign(), actor)
    click.echo(f"credits frozen at {state.frozen_at:%Y-%m-%d %H:%M} UTC")


@click.command("render")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Where to write the MP4.")
@with_appcontext
def render_command(output: str | None) -> None:
    """Render the scrolling credits roll (MP4, H.264) with ffmpeg."""
    from pathlib import Path

    from filmfund.errors import DomainError
    from filmfund.fulfil import credits
    from filmfund.rewards.campaign import current_campaign

    try:
        path = credits.render_roll(current_campaign(), out=Path(output) if output else None)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(str(path))
