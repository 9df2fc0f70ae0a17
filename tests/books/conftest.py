"""The open books tests use the donations spine's fixtures (the loaded campaign, signed Stripe events)."""
from tests.rewards.conftest import campaign, pledge, stripe_events  # noqa: F401
