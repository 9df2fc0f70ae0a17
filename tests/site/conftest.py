import pytest



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
