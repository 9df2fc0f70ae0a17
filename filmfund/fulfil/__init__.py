"""Rewards that reach their donors: physical items and shipping addresses, letters and the
packing list, the end credits (proofs, freeze, rendered roll), the donor's entitlement statement
and the producers' per-reward queues.

Reads the rewards component's entitlements (never recomputes tiers) and the donors' settings
(credit name, anonymity, rewards opt-out) from their profile.
"""
from flask import Flask

from filmfund.rewards import donor_data, signals


def init_app(app: Flask) -> None:
    # in init_app, not at the top: each module of the package imports the package first, and so does the CLI
    from filmfund.fulfil import credits, fulfilment, models, statement, tasks, views  # noqa: F401  (models: tables; tasks: queue)
    from filmfund.fulfil import roll

    # What rewards (a lower layer, which never imports this one) asks of fulfil and tells it.
    # Connecting again (each app built) changes nothing: blinker keeps one entry per receiver.
    signals.checkout_shipping.connect(fulfilment.checkout_shipping)  # which pledges ship, and where to
    signals.checkout_paid.connect(fulfilment.capture_checkout_address)  # the address Checkout collected
    signals.donor_erasing.connect(credits.erase_proof)
    signals.donor_erasing.connect(credits.erase_frozen_lines)  # privacy beats the picture lock
    signals.donor_erasing.connect(roll.erase_from_roll)
    signals.donor_settings_applied.connect(roll.withdraw_after_settings)  # anonymity after the freeze
    signals.donor_erasing.connect(fulfilment.erase_items)
    signals.entitlements_made.connect(fulfilment.make_items_of)  # a physical reward's item, at booking
    # The donor's readable export says an item's and a proof's state as the rewards table does.
    donor_data.describe_codes("fulfilment_items", "state", {s.value: w for s, w in statement.ITEM_LABELS.items()})
    donor_data.describe_codes("credit_proofs", "state", {s.value: w for s, w in statement.PROOF_LABELS.items()})
    donor_data.describe_codes("credit_proofs", "section", statement.SECTION_LABELS)
    donor_data.describe_codes("fulfil_reminders", "refused", statement.REFUSAL_LABELS)

    app.register_blueprint(views.bp)
    app.register_blueprint(views.admin_bp)
    # The account page's "Your rewards" section is an include that asks for its own data.
    app.add_template_global(statement.rewards_statement, "rewards_statement")
    # An address read back to its donor, on every page that shows one (fulfil/addresses.py).
    from filmfund.fulfil import addresses

    app.add_template_filter(addresses.read_back, "read_back")
    app.add_template_global(addresses.form_rows, "address_form_rows")  # and the order its form asks in
    from filmfund.fulfil import cli

    app.cli.add_command(cli.rewards)
    app.cli.add_command(cli.credits_group())
