# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling roll's health gate (controller only): before anything is sent, and after each round, a URL of the
user's must answer with an accepted status; so must each instance's own URL (templated per host) before the roll and
once its batch is ReadyRole. A URL may carry a user and password for the check itself; they are used, and never
shown."""

from __future__ import annotations

import concurrent.futures
import re
import http.client
import threading
import time
from urllib.error import HTTPError, URLError

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, open_url

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import redact_credentials
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import Deadline, Heartbeat, PollSchedule, wait_until

# A failing health URL is asked again every 2 seconds: it is the user's own service, and a round waits on it.
INTERVAL = 2.0
REQUEST_TIMEOUT = 10
# Before anything is sent, a health URL has this long (at most its health_timeout) to answer as accepted: a service
# already unhealthy stops the roll before it takes an upgrade domain down.
BEFORE_ROLL_TIMEOUT = 30
# Instances' URLs checked at once before the roll.
PARALLEL_CHECKS = 16
# At most this many unhealthy instances are named in a refusal.
SHOW_UNHEALTHY = 10


def shown_url(url):
    """A health URL as messages, the state, the report and the summary show it: no user or password, and no query
    (it may carry a token)."""
    text = redact_credentials(url)
    return re.sub(r"\?[^#]*", "?***", text, count=1) if "?" in text else text


def check_url(url):
    """``url`` if it is an http(s) URL with a host and a valid port; an InputError naming the problem (with any
    credentials hidden) before anything is sent otherwise."""
    return names.check_url(url, "health_url", schemes=("http", "https"), own_service=True)


def probe(url, validate_certs=True, ca_path=None, limit=REQUEST_TIMEOUT):
    """(HTTP status or None, what happened) for one GET of the health URL, in at most ``limit`` seconds in all. The
    socket timeout alone bounds each read, so a URL answering a byte at a time could hold a round up for ever; the
    GET runs in a thread of its own, left behind (a daemon) when it overruns."""
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_get(url, validate_certs, ca_path)), daemon=True)
    worker.start()
    worker.join(limit)
    return outcome[0] if outcome else (None, "gave no complete answer in %gs" % round(limit, 1))


def _get(url, validate_certs, ca_path):
    try:
        with open_url(url, method="GET", timeout=REQUEST_TIMEOUT, validate_certs=validate_certs, ca_path=ca_path,
                      follow_redirects="safe") as response:
            return response.status, "answered %d" % response.status
    except HTTPError as exc:
        return exc.code, "answered %d" % exc.code
    except (URLError, UrlsConnectionError, OSError, http.client.HTTPException) as exc:
        return None, "failed: %s" % exc.__class__.__name__


def wait_healthy(url, statuses, timeout, validate_certs=True, ca_path=None, sleep=time.sleep, clock=time.monotonic,
                 say=None):
    """Ask at once, then every INTERVAL seconds until an accepted status or ``timeout``; ``say`` hears what the
    gate waits for at least every 20 s. Returns (healthy, a sentence for the roll's log or its stop reason); none
    of them ever shows credentials."""
    shown = shown_url(url)
    deadline = Deadline(timeout, clock=clock)

    def ask():
        # One GET never runs past the gate's own timeout (with a second's grace to connect at all).
        return probe(url, validate_certs, ca_path, max(1.0, min(REQUEST_TIMEOUT, deadline.remaining)))

    def accepted(answer):
        return answer[0] in statuses

    answer = ask()
    if not accepted(answer) and not deadline.expired():
        heartbeat = None
        if say is not None:
            heartbeat = Heartbeat(lambda last, elapsed: say(
                "health gate: waiting for %s to answer %s; it %s (%ds so far of %ds, rolling_reimage_health_timeout)" % (
                    shown, "/".join(str(s) for s in statuses), (last or answer)[1], elapsed, timeout)), clock=clock)
        answer = wait_until(ask, accepted, deadline, sleep=sleep, schedule=PollSchedule(INTERVAL, 0),
                            heartbeat=heartbeat)[1]
    if accepted(answer):
        return True, "health gate: %s answered %d" % (shown, answer[0])
    return False, "health gate: %s %s within %ss" % (shown, answer[1], timeout)


class HealthGate:
    """The roll's health checks, from the task's arguments: ``url`` (the roll's own, after each round) and
    ``instance_urls`` ({host: URL}, each instance's, after its batch is ReadyRole); both before anything is sent."""

    def __init__(self, url=None, instance_urls=None, statuses=(200,), timeout=300, validate_certs=True, ca_path=None,
                 say=None):
        self.url = check_url(url) if url else None
        self.instance_urls = {host: check_url(value) for host, value in (instance_urls or {}).items() if value}
        self.statuses = statuses
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.say = say

    def __bool__(self):
        return bool(self.url or self.instance_urls)

    def _wait(self, url, timeout, say=None):
        return wait_healthy(url, self.statuses, timeout, validate_certs=self.validate_certs, ca_path=self.ca_path,
                            say=say)

    def before_roll(self, hosts, roll_url=True):
        """(what is unhealthy before anything is sent, as sentences: empty when every URL answered as accepted; every
        check as a record, see ``record``). Checked: the roll's URL (with ``roll_url``), and the URLs of ``hosts``."""
        timeout = min(self.timeout, BEFORE_ROLL_TIMEOUT)
        checks = ([(None, self.url)] if self.url and roll_url else []) + [
            (host, self.instance_urls[host]) for host in hosts if host in self.instance_urls]
        if not checks:
            return [], []
        if self.say:
            self.say("health gate: checking %d URL(s) before anything is sent" % len(checks))
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_CHECKS, len(checks))) as pool:
            answers = list(pool.map(lambda check: (check[0], self._wait(check[1], timeout)), checks))
        unhealthy = ["%s%s" % ("host %s: " % host if host else "", sentence)
                     for host, (healthy, sentence) in answers if not healthy]
        if len(unhealthy) > SHOW_UNHEALTHY:
            unhealthy[SHOW_UNHEALTHY:] = ["... and %d more" % (len(unhealthy) - SHOW_UNHEALTHY)]
        return unhealthy, [record("before the roll", healthy, sentence, host) for host, (healthy, sentence) in answers]

    def after_round(self):
        """(healthy, sentence) of the roll's own URL after a round."""
        return self._wait(self.url, self.timeout, self.say)

    def for_instance(self, host, say=None):
        """(healthy, sentence) of ``host``'s own URL, once its instance is ReadyRole; None when it has none."""
        url = self.instance_urls.get(host)
        if not url:
            return None
        healthy, sentence = self._wait(url, self.timeout, say)
        return healthy, "host %s: %s" % (host, sentence)


def record(when, healthy, sentence, host=None):
    """A health check as the roll's state keeps it for the report's timeline (the sentence hides credentials)."""
    return {"at": time.time(), "when": when, "healthy": bool(healthy), "sentence": sentence, "host": host}
