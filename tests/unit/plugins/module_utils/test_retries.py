"""The retry policy, the backoff and the request-rate ceiling."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _retries as retries_mod
from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _transport as transport_mod


def test_backoff_grows_and_is_jittered():
    low = [retries_mod.backoff_delay(n, rand=lambda: 0.0) for n in range(6)]
    high = [retries_mod.backoff_delay(n, rand=lambda: 1.0) for n in range(6)]
    assert low == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0] and high == [1.0, 2.0, 4.0, 8.0, 16.0, 20.0]


@pytest.mark.parametrize("sent,refused,method,attempt,verdict", [
    (False, False, "POST", 0, "retry"),       # never left: safe to send again, whatever the method
    (False, False, "POST", 3, "give up"),     # ... but only so many times
    (False, True, "GET", 0, "give up"),       # a refused handshake or CONNECT: asking again changes nothing
    (True, False, "GET", 0, "retry"),         # a GET whose answer was lost is simply asked again
    (True, False, "POST", 0, "ambiguous"),    # a POST whose answer was lost may have started the operation
    (True, True, "POST", 0, "ambiguous"),     # even when TLS broke after it was sent
])
def test_retry_policy_for_failures(sent, refused, method, attempt, verdict):
    failure = transport_mod.ExchangeFailed(OSError("x"), sent=sent, refused=refused)
    assert retries_mod.RetryPolicy(3).after_failure(failure, method, attempt) == verdict


def test_retry_policy_for_answers():
    policy = retries_mod.RetryPolicy(2)
    assert [policy.after_answer(s, 0) for s in (500, 503, 409, 404, 502, 200)] == ["retry", "retry"] + ["give up"] * 4
    assert policy.after_answer(503, 2) == "give up"


def test_the_rate_limiter_spaces_requests_from_every_thread_evenly():
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._retries import RateLimiter
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)

    limiter = RateLimiter(20, clock=lambda: now[0], sleep=sleep)
    for _request in range(5):
        limiter.acquire()
    step = 1 / 18.0
    assert slept == pytest.approx([step, 2 * step, 3 * step, 4 * step]), \
        "the first goes at once, then one every 1/18 s (90 % of the ceiling, room for arrival jitter)"
    assert sum(1 for k in range(100) if k * step < 1.0) <= 20, "no second ever holds more than the ceiling"
    now[0] = 10.0
    slept.clear()
    limiter.acquire()
    assert slept == [], "an idle limiter lets the next request go at once"
