import pytest
from flask import g


@pytest.fixture(autouse=True)
def _user_per_request(app):
    """The test app context outlives requests, and Flask reuses it for each test request, so
    Flask-Login's cached user (g._login_user) would leak from one request to the next. In
    production every request has its own app context; forget the cached user to match."""
    def forget_cached_user() -> None:
        g.pop("_login_user", None)
        g.pop("csrf_token", None)  # Flask-WTF caches the token in g too

    app.before_request(forget_cached_user)


@pytest.fixture
def campaign(app):
    from filmfund.rewards import services

    return services.current_campaign()


@pytest.fixture
def producer(make_user):
    return make_user("producer@filmfund.test", "producer")  # signed in by login_as: no argon2 hash needed


@pytest.fixture
def partner(make_user):
    return make_user("partner@xinxing.test", "partner")
