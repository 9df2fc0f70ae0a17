"""Helpers shared by tests of several components."""
from __future__ import annotations

from filmfund.fulfil import credits as end_credits


def credit_names(campaign) -> list[str]:
    """The names the end credits print now, in their order (filmfund.fulfil.credits is the one
    reading of them: profile, anonymity, opt-out, erasure, money mode, approved proofs)."""
    return [line.name for line in end_credits.live_lines(campaign)]
