import pytest


@pytest.fixture
def campaign(app):
    from filmfund.rewards import services

    return services.current_campaign()


@pytest.fixture
def producer(make_user):
    return make_user("producer@filmfund.test", "producer", password="producer-password-1")


@pytest.fixture
def partner(make_user):
    return make_user("partner@xinxing.test", "partner", password="partner-password-1")
