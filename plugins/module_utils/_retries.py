# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a request is asked again (RetryPolicy, declared in one place), how long to wait first (backoff_delay), and
the request-rate ceiling a roll's clients share (RateLimiter)."""

from __future__ import annotations

import random
import threading
import time


def backoff_delay(attempt, base=1.0, cap=20.0, rand=random.random):
    """Exponential backoff with jitter: half fixed, half random, so retries from many hosts spread out."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling / 2 + rand() * ceiling / 2


class RetryPolicy:
    """When request() asks again, in one place.

    - An answer whose status is in ``statuses`` (throttling, internal error) is asked again, whatever the method.
    - No answer, and the request never left (connect, proxy CONNECT or TLS handshake failed): sent again,
      whatever the method, unless the TLS handshake or the proxy refused outright: asking again changes nothing.
    - No answer after the request left (connection reset, read timeout): sent again only for ``resend_methods``.
      For any other method the service may have acted on it: request() raises AmbiguousRequestError, and
      role_instance_operation looks the operation up before anything is sent again.
    - An answer that came but cannot be used (larger than MAX_ANSWER_BYTES, in an encoding not asked for): not
      asked again, the same would come back; after a POST, handled as a lost answer (AmbiguousRequestError).
    - At most ``retries`` times, waiting ``backoff_delay(attempt)`` before each.

    urllib3's own Retry is not used: its sleeps could not be injected, and 409 waits and lost-answer lookups
    need the service's error bodies, which only this client parses.
    """

    RETRY, GIVE_UP, AMBIGUOUS = "retry", "give up", "ambiguous"
    statuses = frozenset((500, 503))
    resend_methods = frozenset(("GET",))

    def __init__(self, retries, backoff_base=1.0, backoff_cap=20.0):
        self.retries = retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap

    def after_answer(self, status, attempt):
        return self.RETRY if status in self.statuses and attempt < self.retries else self.GIVE_UP

    def after_failure(self, failure, method, attempt):
        if failure.sent and method not in self.resend_methods:
            return self.AMBIGUOUS
        if failure.refused or attempt >= self.retries:
            return self.GIVE_UP
        return self.RETRY

    def delay(self, attempt, rand=random.random):
        return backoff_delay(attempt, self.backoff_base, self.backoff_cap, rand)


class RateLimiter:
    """At most ``rate`` requests a second, shared by threads: each takes the next free slot and sleeps until it
    (an even spacing, so a roll's polls never arrive at the service in bursts)."""

    # Sends are spaced for 90 % of the ceiling: threads and TLS add jitter between sending and arriving, and
    # the ceiling is a promise about arrivals in any one second at the service.
    HEADROOM = 0.9

    def __init__(self, rate, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / (rate * self.HEADROOM)
        self.clock = clock
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self):
        with self._lock:
            now = self.clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self.sleep(slot - now)
