# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting, in one place: the deadline, the polling schedule, the loop, and the predicates that end a wait
(an operation no longer InProgress; an instance ReadyRole, or in a state it does not leave by itself).
Private to this collection.

The interval grows with the time already waited.

Polling every max(MIN_INTERVAL, GROWTH x elapsed) notices the end of a short operation within half a
second and of a long one within a tenth of its duration, with a number of polls that grows only with
the logarithm of the duration (about 60 for ten minutes), where a fixed interval must choose between
the two.
"""

from __future__ import annotations

import contextlib
import threading
import time

MIN_INTERVAL = 0.5
GROWTH = 0.1
MAX_INTERVAL = 60.0
# With an expected duration (learned from the same roll, its median), the first poll comes when it has passed:
# one or two polls then notice the end, where the growing schedule alone would spend a dozen.
EXPECTED_SHARE = 1.0
# A wait that a person watches says what it waits for at least this often (seconds), whether or not a poll falls due:
# polls grow up to MAX_INTERVAL apart, and a learned duration may put the first one minutes away.
SAY_EVERY = 20.0


READY = "ReadyRole"
# States a reimaged instance does not leave by itself; waiting for ReadyRole stops at them. StoppedVM is not
# one: an instance passes through it while it is reimaged.
NOT_RECOVERING = ("FailedStartingRole", "FailedStartingVM", "CyclingRole", "UnresponsiveRole", "StoppedDeallocated")


def operation_ended(operation):
    """Get Operation Status says Succeeded or Failed."""
    return operation["status"] != "InProgress"


def instance_settled(status):
    """The instance is ReadyRole, or in a state that waiting longer does not change."""
    return status == READY or status in NOT_RECOVERING


class PollSchedule:
    """How often a wait asks: every ``min_interval`` seconds at first, then ``growth`` times the time already
    waited, never less often than every ``max_interval`` seconds (see next_interval)."""

    def __init__(self, min_interval=MIN_INTERVAL, growth=GROWTH, max_interval=MAX_INTERVAL):
        self.min_interval = min_interval
        self.growth = growth
        self.max_interval = max_interval


def next_interval(elapsed, min_interval=MIN_INTERVAL, growth=GROWTH, max_interval=MAX_INTERVAL):
    return min(max(min_interval, growth * elapsed), max_interval)


class Deadline:
    """A wall-clock budget measured on the monotonic clock."""

    def __init__(self, seconds, clock=time.monotonic, started=None):
        self.clock = clock
        self.started = clock() if started is None else started
        self.seconds = seconds

    @property
    def elapsed(self):
        return self.clock() - self.started

    @property
    def remaining(self):
        return self.seconds - self.elapsed

    def expired(self):
        return self.remaining <= 0


class Heartbeat:
    """What a watched wait says while it waits: ``say(value, elapsed)`` at least every ``every`` seconds, with the
    last value polled (None before the first poll) and the seconds since the wait began. The first comes after
    ``every`` seconds: a short wait says nothing."""

    def __init__(self, say, every=SAY_EVERY, clock=time.monotonic):
        self.say = say
        self.every = every
        self.clock = clock
        self.started = self.said = clock()
        self._lock = threading.Lock()

    def beat(self, value):
        with self._lock:
            now = self.clock()
            if now - self.said < self.every:
                return
            self.said = now
        self.say(value, now - self.started)

    @contextlib.contextmanager
    def during(self, value):
        """Beat while the body runs (one request to a slow service may take up to its timeout), from a thread of
        its own that looks every second."""
        stop = threading.Event()

        def keep_beating():
            while not stop.wait(1.0):
                self.beat(value)

        beater = threading.Thread(target=keep_beating, daemon=True)
        beater.start()
        try:
            yield
        finally:
            stop.set()
            beater.join()

    def sleep(self, sleep, seconds, value=None):
        """``sleep(seconds)`` in slices of at most ``every`` seconds, beating after each."""
        while seconds > 0:
            step = min(seconds, self.every)
            sleep(step)
            seconds -= step
            self.beat(value)


def wait_until(probe, done, deadline, sleep=time.sleep, on_poll=None, schedule=None, expected=None, heartbeat=None):
    """Call ``probe()`` until ``done(value)`` or the deadline passes.

    Returns ``(satisfied, value, polls)``. The first probe is made one interval after the deadline
    started, since an operation that was just accepted is never already finished, or, when the wait is
    ``expected`` to take some seconds, at EXPECTED_SHARE of them; later ones follow the growing schedule.
    A ``heartbeat`` (Heartbeat) says what the wait waits for, between polls too; it adds no poll.
    """
    schedule = schedule or PollSchedule()
    polls = 0
    value = None
    while True:
        wait = next_interval(deadline.elapsed, schedule.min_interval, schedule.growth, schedule.max_interval)
        if expected and not polls:
            wait = max(wait, EXPECTED_SHARE * expected - deadline.elapsed)
        wait = min(wait, max(deadline.remaining, 0))
        if wait > 0:
            if heartbeat is None:
                sleep(wait)
            else:
                heartbeat.sleep(sleep, wait, value)
        if heartbeat is None:
            value = probe()
        else:
            with heartbeat.during(value):
                value = probe()
        polls += 1
        if on_poll:
            on_poll(value)
        if heartbeat is not None:
            heartbeat.beat(value)
        if done(value):
            return True, value, polls
        if deadline.expired():
            return False, value, polls
