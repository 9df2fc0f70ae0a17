"""CLI: `filmfund campaign load`, `filmfund ledger check`, `filmfund demo seed`."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from filmfund.errors import DomainError
from filmfund.extensions import db
from filmfund.rewards import ledger_check
from filmfund.rewards.campaign import load_campaign

campaign = click.Group("campaign", help="The campaign of the film.")
ledger = click.Group("ledger", help="The money ledger.")
demo = click.Group("demo", help="Demo data (test money only).")


@campaign.command("load")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@with_appcontext
def load_command(path: str | None) -> None:
    """Load (or update) the campaign from its TOML file; the configured one by default."""
    try:
        loaded = load_campaign(path)
        db.session.commit()
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    rewards = sum(len(t.rewards) for t in loaded.tiers)
    click.echo(f"campaign {loaded.slug}: {len(loaded.tiers)} tiers, {rewards} rewards")


@ledger.command("check")
@with_appcontext
def check_command() -> None:
    """Verify every money invariant; exits 1 on any breach."""
    breaches = ledger_check.check_ledger(record="cli")
    for breach in breaches:
        click.echo(f"BREACH {breach}", err=True)
    if breaches:
        sys.exit(1)
    click.echo("ledger ok")


@demo.command("seed")
@click.option("--donations", type=click.IntRange(1), required=True, help="How many donations to book.")
@click.option("--donors", type=click.IntRange(1), default=None, help="From how many donors (default: donations / 4).")
@click.option("--seed", "seed_value", type=int, default=2026, show_default=True, help="Random seed (amounts, days).")
@with_appcontext
def demo_seed_command(donations: int, donors: int | None, seed_value: int) -> None:
    """Book N synthetic test-mode donations from M donors through the ledger, in bulk.

    Refused with a live Stripe key. `filmfund ledger check` passes on the result."""
    import time  # the CLI's commands import in their body (cli_app.py)

    from filmfund.rewards import demo  # the CLI's commands import in their body (cli_app.py)

    started = time.monotonic()
    try:
        result = demo.seed(donations, donors, seed_value=seed_value,
                           progress=lambda done, total: click.echo(f"  {done:,}/{total:,} donations", err=True))
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"booked {result['donations']:,} test-mode donations from {result['donors']:,} donors "
               f"({result['gross'] / 100:,.2f}) in {time.monotonic() - started:.1f} s")
