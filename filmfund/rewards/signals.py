"""What the rewards component asks of the components built on it, and what it tells them.

rewards sits below fulfil in the layers (pyproject.toml's import contract): it never imports it.
Where one of its use cases needs fulfil's answer, or must let fulfil do its part in the same
transaction, it sends one of these signals (blinker's, as Flask's own) and fulfil's init_app
connects the receivers. create_app runs every component's init_app in every process that runs
rewards code (the web processes, `filmfund worker`, the CLI commands), so the receivers are there
wherever a signal is sent; connecting the same receiver again (another app built, as the tests
do) changes nothing. With no receiver (rewards alone) no pledge ships, and nobody else is told.

Receivers are module-level functions: blinker keeps a weak reference to each.
(`donors.CONFIRMED_ELSEWHERE` is the same idea for a confirmed settings change.)
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Asked while a pledge's Stripe Checkout Session is prepared (sender: the Pledge). A receiver
#: answers the countries Checkout may collect a shipping address in for it (the pledge alone
#: reaches a tier with something to post), or nothing: then Checkout asks for no address.
checkout_shipping = _signals.signal("checkout-shipping")

#: A Checkout Session's payment was booked (sender: the new Donation; `session`: the Session as
#: Stripe sent it, with the shipping details Checkout collected), in the booking's transaction.
#: A receiver answers "pending" when what it kept of the session waits for the email owner's
#: confirmation: the link goes out in that gift's receipt, which is composed again.
checkout_paid = _signals.signal("checkout-paid")

#: New entitlements were made (sender: the Campaign; `made`: their (entitlement id, reward id)), in
#: refresh_entitlements' transaction (a booking's), flushed: a receiver makes what each needs at
#: once (fulfil: a physical reward's item), so that no page has to make it when it is first read.
entitlements_made = _signals.signal("entitlements-made")

#: A donor's settings changed what the world may see of them (sender: the User), in the use case's
#: transaction, flushed: their name, anonymity or rewards. A receiver takes down what shows them
#: where they no longer appear (a credits roll rendered before), once the caller commits.
donor_settings_applied = _signals.signal("donor-settings-applied")

#: A donor's personal data is being erased (sender: the User, their email not yet replaced), in
#: erase_donor's transaction: each receiver deletes or blanks its own rows about them.
donor_erasing = _signals.signal("donor-erasing")


def shipping_countries(pledge) -> list[str]:
    """Where Checkout may ask this pledge's donor to have their rewards posted (none: no address)."""
    return sorted({country for _, answer in checkout_shipping.send(pledge) for country in answer or ()})


def checkout_paid_pending(donation, session: dict) -> bool:
    """Tell the receivers a Checkout Session's payment was booked; True when something they kept
    waits for the donor's confirmation (mailed with the receipt)."""
    return any(answer == "pending" for _, answer in checkout_paid.send(donation, session=session))
