"""The polling schedule: prompt for short operations, sparing for long ones, bounded by the deadline."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    Deadline, PollSchedule, next_interval, wait_until)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.now += seconds


def _simulate(duration, budget=10000):
    clock = FakeClock()
    start = clock.now
    deadline = Deadline(budget, clock=clock)
    done, value, polls = wait_until(lambda: clock.now - start >= duration, bool, deadline, clock.sleep)
    return done, polls, (clock.now - start) - duration


@pytest.mark.parametrize("duration", [0.3, 2, 5, 31, 60, 161, 214, 600])
def test_completion_is_noticed_promptly(duration):
    done, polls, late = _simulate(duration)
    assert done
    assert late <= max(0.5, 0.1 * duration) + 1e-9


def test_polls_grow_logarithmically():
    assert _simulate(5)[1] == 10
    assert _simulate(60)[1] <= 37
    assert _simulate(600)[1] <= 61
    assert _simulate(3600)[1] <= 160


def test_timeout_stops_at_the_deadline():
    clock = FakeClock()
    deadline = Deadline(7, clock=clock)
    done, value, polls = wait_until(lambda: False, bool, deadline, clock.sleep)
    assert not done and clock.now - 1000.0 == pytest.approx(7)


def test_zero_budget_probes_once():
    clock = FakeClock()
    done, value, polls = wait_until(lambda: "x", lambda v: False, Deadline(0, clock=clock), clock.sleep)
    assert polls == 1 and not done and clock.now == 1000.0


def test_interval_bounds():
    assert next_interval(0) == 0.5
    assert next_interval(100) == pytest.approx(10)
    assert next_interval(10000) == 60


@pytest.mark.parametrize("duration,expected,most_polls", [(5.0, 5.0, 1), (5.2, 5.0, 2), (30, 30, 1), (4, 5.0, 1)])
def test_an_expected_duration_saves_the_polls_before_it(duration, expected, most_polls):
    clock = FakeClock()
    start = clock.now
    done, _value, polls = wait_until(lambda: clock.now - start >= duration, bool, Deadline(600, clock=clock),
                                     clock.sleep, schedule=PollSchedule(0.25, 0.05), expected=expected)
    assert done and polls <= most_polls
    assert clock.now - start - duration <= max(0.25, 0.05 * duration) + max(0, expected - duration)


def test_an_expected_duration_never_outlasts_the_deadline():
    clock = FakeClock()
    done, _value, _polls = wait_until(lambda: False, bool, Deadline(3, clock=clock), clock.sleep, expected=100)
    assert not done and clock.now - 1000.0 <= 3.0 + 1e-9


def test_a_heartbeat_speaks_between_polls_and_adds_none():
    """A learned duration puts the first poll ten minutes away: the wait still says so at least every SAY_EVERY s."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import SAY_EVERY, Heartbeat
    clock = FakeClock()
    said = []
    heartbeat = Heartbeat(lambda value, elapsed: said.append((elapsed, value)), clock=clock)
    deadline = Deadline(3600, clock=clock)
    start = clock.now
    done, _value, polls = wait_until(lambda: clock.now - start >= 600, bool, deadline, clock.sleep, expected=600,
                                     heartbeat=heartbeat)
    assert done and polls == 1, "the heartbeat asks nothing"
    times = [0.0] + [elapsed for elapsed, _value in said]
    assert len(said) >= 600 // SAY_EVERY - 1 and all(b - a <= SAY_EVERY for a, b in zip(times, times[1:])), times
    assert said[0][1] is None, "before the first poll there is no value yet"


def test_a_heartbeat_speaks_while_one_slow_request_is_in_flight():
    """One request to a slow service may take up to its timeout: the heartbeat speaks during it too."""
    import time as real_time
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import Heartbeat
    said = []
    heartbeat = Heartbeat(lambda value, elapsed: said.append((round(elapsed, 1), value)), every=0.5)
    with heartbeat.during("BusyRole"):
        real_time.sleep(2.2)
    assert len(said) >= 2 and all(value == "BusyRole" for _elapsed, value in said), said
