"""The health gate's schedule and its words, with the clock, the sleep and the probe stubbed."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import health_gate

URL = "https://gate:s3cret@health.test/ready"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def gate(monkeypatch, answers, timeout):
    """Run wait_healthy against scripted answers; returns (healthy, sentence, times the URL was asked)."""
    clock = Clock()
    asked = []

    def probe(url, validate_certs=True, ca_path=None, limit=None):
        asked.append(clock.now - 100.0)
        status = answers[min(len(asked), len(answers)) - 1]
        return status, ("answered %d" % status if status else "failed: URLError")

    monkeypatch.setattr(health_gate, "probe", probe)
    healthy, sentence = health_gate.wait_healthy(URL, [200], timeout, sleep=clock.sleep, clock=clock)
    return healthy, sentence, asked


def test_the_first_answer_is_asked_at_once(monkeypatch):
    healthy, sentence, asked = gate(monkeypatch, [200], timeout=30)
    assert healthy and asked == [0.0]
    assert sentence == "health gate: https://***@health.test/ready answered 200"


def test_a_failing_url_is_asked_every_two_seconds_until_the_deadline(monkeypatch):
    healthy, sentence, asked = gate(monkeypatch, [503], timeout=5)
    assert not healthy and asked == [0.0, 2.0, 4.0, 5.0], "the last look is at the deadline"
    assert sentence == "health gate: https://***@health.test/ready answered 503 within 5s"
    assert "s3cret" not in sentence


def test_a_url_that_recovers_passes(monkeypatch):
    healthy, _sentence, asked = gate(monkeypatch, [None, 503, 200], timeout=30)
    assert healthy and asked == [0.0, 2.0, 4.0]


def test_no_time_means_one_look(monkeypatch):
    healthy, sentence, asked = gate(monkeypatch, [None], timeout=0)
    assert not healthy and asked == [0.0] and sentence.endswith("failed: URLError within 0s")


@pytest.mark.parametrize("url", ["https://gate:p#ss@health.test/", "https://gate:p?ss@health.test/",
                                 "https://gate:p/ss@health.test/", "https://gate:1234#x@health.test/h"])
def test_an_unencoded_password_is_refused_and_never_shown(url):
    with pytest.raises(InputError) as caught:
        health_gate.check_url(url)
    message = str(caught.value)
    assert "https://***@" in message and "must be percent-encoded" in message
    assert "ss@" not in message and "'p'" not in message and "1234" not in message


def test_credentials_and_a_query_are_allowed_for_the_users_own_health_url():
    assert health_gate.check_url("https://gate:s3cret@health.test/ready?deep=1") == \
        "https://gate:s3cret@health.test/ready?deep=1"


def test_one_probe_is_bounded_in_time_whatever_the_url_does(monkeypatch):
    """A URL that answers a byte at a time: each read is within the socket timeout, the whole GET is not."""
    import threading
    from urllib.error import URLError
    release = threading.Event()

    def never_ends(*args, **kwargs):
        release.wait(30)
        raise URLError("released by the test")
    monkeypatch.setattr(health_gate, "open_url", never_ends)
    try:
        assert health_gate.probe("https://health.example/", limit=0.2) == (
            None, "gave no complete answer in 0.2s")
    finally:
        release.set()


def test_a_health_urls_credentials_and_query_are_never_shown():
    assert health_gate.shown_url("https://alice:pw@h.example:8443/health?token=s3cret#x") == \
        "https://***@h.example:8443/health?***#x"
    assert health_gate.shown_url("https://h.example/health") == "https://h.example/health"
