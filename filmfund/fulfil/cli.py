"""CLI: `filmfund rewards remind` and `filmfund credits export|freeze|render`."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

# Each command imports the component in its body: listing the commands loads no SQLAlchemy (cli_app.py).
rewards = click.Group("rewards", help="Delivering the rewards.")
credits = click.Group("credits", help="The film's end credits.")


def credits_group() -> click.Group:
    """`filmfund credits`: export, freeze and render."""
    return credits


@credits.command("export")
@click.option("--format", "fmt", type=click.Choice(["txt", "csv"]), default="txt", show_default=True)
@with_appcontext
def export_command(fmt: str) -> None:
    """The end credits to stdout: executive producers, then supporters (see filmfund.fulfil.credits)."""
    from filmfund.audit import record_audit
    from filmfund.extensions import db
    from filmfund.fulfil import credits as end_credits
    from filmfund.rewards.campaign import current_campaign

    campaign = current_campaign()
    changes = end_credits.changes_since_freeze(campaign)
    if changes and (changes["added"] or changes["removed"]):
        click.echo(f"WARNING the live list changed since the freeze: {len(changes['added'])} added, "
                   f"{len(changes['removed'])} removed (see /admin/credits); exporting the frozen list", err=True)
    if changes and changes["withdrawn"]:
        click.echo(f"NOTE {len(changes['withdrawn'])} frozen line(s) left out: their donors asked for anonymity "
                   "or erasure, or declined rewards, after the freeze; render the roll again", err=True)
    record_audit("export.credits", f"campaign:{campaign.slug}", {"format": fmt})
    db.session.commit()
    # Written as it is read, a chunk of the live list at a time (a program reads it: no BOM).
    pieces = end_credits.stream_txt(campaign) if fmt == "txt" else end_credits.stream_csv(campaign, newline="\n")
    for piece in pieces:
        click.echo(piece, nl=False)


@rewards.command("remind")
@with_appcontext
def remind_command() -> None:
    """Mail the address surveys and credits proofs that are due (first mails and reminders)."""
    from filmfund.fulfil import tasks
    from filmfund.rewards.campaign import current_campaign

    campaign = current_campaign()
    # Each loop commits every mail as it goes (a second run after a crash mails nobody twice).
    for what, mailing in (("address surveys", tasks.survey_mailing), ("credits proofs", tasks.proof_mailing)):
        done = mailing(campaign)
        refused = f" ({done.refused} refused by the mail server: their addresses are on the log)" if done.refused else ""
        click.echo(f"{what} sent: {done.sent}{refused}")


@credits.command("freeze")
@click.option("--by", "actor", default="cli", show_default=True, help="Who froze it (for the record).")
@with_appcontext
def freeze_command(actor: str) -> None:
    """Picture lock: freeze the credits as they stand (later changes are flagged)."""
    from filmfund.extensions import db
    from filmfund.fulfil import credits
    from filmfund.rewards.campaign import current_campaign

    state = credits.freeze(current_campaign(), actor)
    db.session.commit()
    click.echo(f"credits frozen at {state.frozen_at:%Y-%m-%d %H:%M} UTC")


@credits.command("render")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Where to write the MP4.")
@with_appcontext
def render_command(output: str | None) -> None:
    """Render the scrolling credits roll (MP4, H.264) with ffmpeg."""
    from pathlib import Path

    from filmfund.errors import DomainError
    from filmfund.extensions import db
    from filmfund.fulfil import roll as roll_video
    from filmfund.rewards.campaign import current_campaign

    try:
        path = roll_video.render_roll(current_campaign(), out=Path(output) if output else None)
        db.session.commit()  # its audit entry
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(str(path))
