"""Flask-Limiter's per-request hooks are taken out only while they have nothing to do
(extensions.route_limits_only): the route limits themselves are tested with their routes."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from filmfund.extensions import _limiter_after_hook, answers_after, limiter


def test_the_app_runs_no_limiter_hook_that_has_nothing_to_do(app):
    assert limiter._check_request_limit not in app.before_request_funcs.get(None, [])
    assert not any(_limiter_after_hook(hook, limiter) for hook in app.after_request_funcs.get(None, []))
    # the route limits are still declared, and none of them is counted by its answer
    assert limiter.limit_manager._decorated_limits
    assert not answers_after(limiter)


def test_a_limit_counted_by_its_answer_or_headers_keep_the_after_hook():
    quiet = Limiter(key_func=get_remote_address, headers_enabled=False)

    @quiet.limit("5 per minute")
    def plain():
        return ""

    assert not answers_after(quiet)

    @quiet.limit("5 per minute", deduct_when=lambda response: response.status_code == 401)
    def counted_when_refused():
        return ""

    assert answers_after(quiet)
    assert answers_after(Limiter(key_func=get_remote_address, headers_enabled=True))
