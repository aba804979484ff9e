# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One deployment's part of a roll: before each batch, what the service's history and the deployment say now (another
job, a reboot from elsewhere, a stuck instance); then the batch's operations, sent back to back and each followed
to its end, never sent twice; then the wait until its instances are ReadyRole."""

from __future__ import annotations

import concurrent.futures
import threading

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AcceptedRequestError, AzureClassicError, WaitTimeoutError, shown
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    READY, Deadline, Heartbeat, PollSchedule, instance_settled, wait_until)
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.history import checked_history, describe_operation, latest_operations
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.identity import instance_key
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.kinds import DEFAULT_KIND, words
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import iso, now

# A batch held back by instances down in other upgrade domains says so at least this often (and looks again at least
# every AVAILABILITY_POLL_MAX seconds), so an operator is never left guessing for more than 30 s.
SAY_WAITING_EVERY = 20.0
AVAILABILITY_POLL_MAX = 10.0
# A read of the deployment this recent (seconds) is what it still is: the availability check before a batch reuses
# the previous batch's last look instead of reading again.
FRESH_LOOK = 1.0
DEFAULT_AVAILABILITY_TIMEOUT = 1800
# A batch's instance health URLs are checked at once, at most this many at a time.
PARALLEL_HEALTH_CHECKS = 16


class Timing:
    """How long this roll's operations and recoveries took so far (kept in its state, so later rounds know it):
    a wait expected to take that long looks first near its end, instead of polling all along."""

    KEEP = 25
    _lock = threading.Lock()

    def __init__(self, state):
        self.learned = state.setdefault("learned", {})

    def expected(self, what):
        with self._lock:
            seen = sorted(self.learned.get(what) or ())
        return seen[len(seen) // 2] if seen else None

    def learn(self, what, seconds):
        with self._lock:
            seen = self.learned.setdefault(what, [])
            seen.append(round(seconds, 2))
            del seen[:-self.KEEP]


class BatchHeld(AzureClassicError):
    """A batch may not go on: instances of other upgrade domains stayed down (the deployment is stopped)."""


class DeploymentRunner:
    """``health``: a HealthGate whose instance URLs are checked once a batch is ReadyRole (None: no such check)."""

    def __init__(self, client, state, state_file, dep_key, options, say, health=None):
        self.client = client
        self.state = state
        self.state_file = state_file
        self.dep_key = dep_key
        self.dep = state["deployments"][dep_key]
        self.options = options
        self.say = lambda line: say(shown(line))  # progress lines quote the service's statuses and names
        self.kind = state.get("kind") or DEFAULT_KIND
        self.words = words(self.kind)
        self._recent = {}  # the latest operation of any kind per instance, from the last history read
        self._polls = 0  # polls spent waiting for other upgrade domains
        self._last_look = (0.0, None)  # (client clock, role instances) of the last read of the deployment
        self.health = health

    def _save(self):
        if self.state_file is not None:
            self.state_file.save_soon(self.state)

    def _fail(self, inst, message, code, request_id=None, instance_down=False):
        """Record a failed instance. One that is (or may still be) down stops the deployment whatever
        rolling_reimage_max_failures says: rolling on would take a second upgrade domain down."""
        message = shown(message)  # it may quote the service: its status, its words
        inst.update(outcome="failed", end=now(), error={"code": code, "message": message,
                                                        "request_id": request_id or inst.get("request_id")})
        self.dep["failures"] += 1
        if instance_down or self.dep["failures"] > self.options["max_failures"]:
            self._stop("%s: %s" % (inst["instance"], message))

    def _stop(self, reason):
        if not self.dep["stopped"]:
            self.dep["stopped"] = True
            self.dep["stop_reason"] = shown(reason)  # it may quote the service: its statuses, its words

    def follow(self, inst, accepted_at=None):
        """Wait for the operation ``inst`` has a request id for; returns True when it Succeeded. With
        ``accepted_at`` (this run sent it) its duration teaches the roll when to look next time."""
        timing = Timing(self.state)
        running = self._progress("%s: its %s, operation %s, is running" % (
            inst["instance"], self.words["verb"], inst["request_id"]),
            self.options["operation_timeout"], "rolling_reimage_operation_timeout")
        try:
            operation = self.client.wait_for_operation(
                inst["request_id"], Deadline(self.options["operation_timeout"], clock=self.client.clock), probe_first=accepted_at is None,
                expected=timing.expected("operation") if accepted_at is not None else None, heartbeat=running)
        except WaitTimeoutError:
            self._fail(inst, "%s %s did not end within %ss; it was not cancelled, and a rerun of this roll "
                             "follows it instead of sending another" % (self.words["verb"], inst["request_id"],
                                                                        self.options["operation_timeout"]),
                       "Timeout", instance_down=True)
            return False
        except AzureClassicError as err:
            self._fail(inst, err.readable(), err.code or "Error")
            return False
        if operation["status"] != "Succeeded":
            error = operation["error"] or {}
            self._fail(inst, error.get("message") or "the operation failed", "OperationFailed")
            inst["error"]["service_code"] = error.get("code")
            return False
        inst["operation_end"] = now()
        if accepted_at is not None:
            timing.learn("operation", inst["operation_end"] - accepted_at)
        return True

    def _send(self, inst, upgrade_domain):
        """Send the roll's operation and wait for it; returns True when it Succeeded."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        inst.update(start=now(), outcome="started", request_id=None)
        # Saved before sending: if this run dies before the answer, the next one asks the service what happened.
        self._save()

        def recheck(_holder):
            # Another operation held the deployment's lock, and the deployment may have changed while it did. Nothing
            # is sent when the history cannot tell (the deployment stopped) or shows an unusable entry (failed).
            self._adopt_from_history([inst])
            if inst.get("adopted"):
                return inst["request_id"]
            if self.dep["stopped"] or inst["outcome"] == "failed" or not self._wait_for_other_domains(upgrade_domain):
                raise BatchHeld(self.dep["stop_reason"])
            return None

        try:
            # The client checks the id the service answered with before it is kept or put into a URL.
            request_id = self.client.role_instance_operation(
                self.kind, svc, inst["instance"], deployment_name=name,
                deadline=Deadline(self.options["operation_timeout"]), recheck=recheck,
                on_lock_wait=self._progress("%s waits for the deployment's lock" % inst["instance"],
                                            self.options["operation_timeout"], "rolling_reimage_operation_timeout"))
        except BatchHeld:
            if inst["outcome"] != "failed":
                inst.update(outcome="pending", start=None, request_id=None)
            return False
        except AcceptedRequestError as err:
            # It started, but the answer names no usable id: the service's history does, or the instance may be
            # down for an unknown time, which stops the deployment.
            self._adopt_from_history([inst])
            if inst.get("request_id"):
                inst["adopted"] = False
                return self.follow(inst)
            self._fail(inst, err.readable(), err.code or "Error", instance_down=True)
            return False
        except AzureClassicError as err:
            self._fail(inst, err.readable(), err.code or "Error")
            return False
        if inst.get("adopted"):
            return self._follow_adopted(inst)
        inst["request_id"] = request_id
        self._save()
        return self.follow(inst, accepted_at=now())

    def _progress(self, what, limit=None, setting=None):
        """A Heartbeat that says ``what`` the roll waits for, the status last seen, for how long so far and the limit,
        at least every SAY_WAITING_EVERY seconds: a wait is never silent for more than 30 s."""
        def say(value, elapsed):
            status = value.get("status") if isinstance(value, dict) else None
            self.say("[%s] %s (%s%ds so far%s)" % (
                self.dep_key, what, "%s, " % status if status else "", elapsed,
                " of %ds, %s" % (limit, setting) if limit else ""))
        return Heartbeat(say, SAY_WAITING_EVERY, clock=self.client.clock)

    def _follow_adopted(self, inst):
        self.say("[%s] %s: a %s that another client started during this roll (operation %s) is followed, not sent "
                 "again" % (self.dep_key, inst["instance"], self.words["verb"], inst["request_id"]))
        self._save()
        return self.follow(inst)

    def _history(self):
        """The service's operations on the deployment's cloud service since the roll's window; keeps the latest of
        any kind per instance, which explains why an instance is down."""
        since = self.state.get("counts_since") or self.state.get("window_start") or 0
        operations = checked_history(self.client, self.dep["cloud_service"], since)
        self._recent = latest_operations(operations)
        return operations

    def _adopt_from_history(self, instances):
        """What anyone did since the roll began: an instance of ``instances`` not yet sent that the service's history
        shows given the roll's operation (by a second job, say) counts as done by it, and is followed, never sent
        again. Also keeps the latest operation of any kind per instance, to explain why an instance is down."""
        name = self.dep["deployment_name"].lower()
        try:
            operations = self._history()
        except AzureClassicError as err:
            self._stop("cannot read the service's operation history, which tells whether another job already %s "
                       "the next instances: %s" % (self.words["done"], err.readable()))
            return
        same = latest_operations(operations, self.kind)
        for inst in instances:
            if inst["outcome"] not in ("pending", "started") or inst.get("request_id"):
                continue
            op = same.get((name, inst["instance"].lower()))
            if op is None or op.get("status") == "Failed":
                continue
            if op.get("bad_request_id") is not None:
                self._fail(inst, "the service's history shows a %s of it whose id %r is not an operation id; the roll "
                                 "will not guess whether it happened" % (self.words["verb"], op["bad_request_id"][:80]),
                           "BadResponse", instance_down=True)
                continue
            inst.update(outcome="started", request_id=op["request_id"], start=now(), adopted=True)

    def _wait_for_other_domains(self, upgrade_domain, reuse_look=False):
        """Wait while an instance of another upgrade domain than ``upgrade_domain`` is not ReadyRole, whoever took
        it down (rolling_reimage_availability_timeout at most); False, with the deployment stopped, when they stay
        down. Instances accepted down at plan time (rolling_reimage_allow_unready) do not count."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        accepted = set(self.dep.get("accepted_down") or ())
        down_since = self.dep.setdefault("down_since", {})
        timeout = self.options.get("availability_timeout", DEFAULT_AVAILABILITY_TIMEOUT)
        deadline = Deadline(timeout, clock=self.client.clock)
        said = [None]

        def blocking(instances):
            return [live for live in instances if live["instance_status"] != READY
                    and live["upgrade_domain"] != upgrade_domain and live["instance_name"].lower() not in accepted]

        def probe():
            instances = self.client.get_deployment(svc, deployment_name=name)["role_instances"]
            self._last_look = (self.client.clock(), instances)
            return instances

        def note(instances):
            down = blocking(instances)
            seen_at = now()
            for live in down:
                down_since.setdefault(live["instance_name"], seen_at)
            if down and (said[0] is None or deadline.elapsed - said[0] >= SAY_WAITING_EVERY):
                said[0] = deadline.elapsed
                self.say("[%s] upgrade domain %s waits: %s (waited %ds of %ds, rolling_reimage_availability_timeout)"
                         % (self.dep_key, upgrade_domain, self._describe_down(down), deadline.elapsed, timeout))

        try:
            # The previous batch's last look, when it is a moment old, saves a read: at fleet scale the roll runs at its
            # request-rate ceiling, where every request counts.
            looked_at, instances = self._last_look
            if not reuse_look or instances is None or self.client.clock() - looked_at > FRESH_LOOK:
                instances = probe()
            if blocking(instances):
                try:
                    self._history()  # what took them down, for the messages (only when something is down)
                except AzureClassicError:
                    pass
            note(instances)
            if blocking(instances):
                schedule = PollSchedule(self.client.poll.min_interval, self.client.poll.growth,
                                        max_interval=AVAILABILITY_POLL_MAX)
                _done, instances, polls = wait_until(probe, lambda found: not blocking(found), deadline,
                                                     self.client.sleep, note, schedule)
                self._polls += polls
        except AzureClassicError as err:
            self._stop("cannot read the deployment before upgrade domain %s, to check that no other upgrade domain "
                       "is down: %s" % (upgrade_domain, err.readable()))
            return False
        down = blocking(instances)
        if down:
            self._stop("instances of other upgrade domains stayed down for %ds (rolling_reimage_availability_timeout)"
                       ": %s; taking upgrade domain %s down too would leave two down. Repair or wait for them, then "
                       "run the roll again: what it already did is not sent again" % (
                           timeout, self._describe_down(down), upgrade_domain))
            return False
        for live in instances:
            down_since.pop(live["instance_name"], None)
            if live["instance_status"] == READY and live["instance_name"].lower() in accepted:
                # Accepted down at plan time, up again: from now on it counts like any other instance.
                self.dep["accepted_down"].remove(live["instance_name"].lower())
        return True

    def _clear_to_send(self, instances, upgrade_domain, reuse_look=False):
        """Whether the next send may go: no instance of another upgrade domain down (waited for, within
        rolling_reimage_availability_timeout); after a wait the history is read again, since another job may have
        done part of the batch meanwhile."""
        polls = self._polls
        if not self._wait_for_other_domains(upgrade_domain, reuse_look):
            return False
        if self._polls != polls:
            self._adopt_from_history(instances)
        return not self.dep["stopped"]

    def _describe_down(self, down):
        parts = []
        for live in sorted(down, key=lambda i: (i["upgrade_domain"], i["instance_name"])):
            op = self._recent.get((self.dep["deployment_name"].lower(), live["instance_name"].lower()))
            parts.append("%s (upgrade domain %s) is %s, down since %s%s" % (
                live["instance_name"], live["upgrade_domain"], live["instance_status"],
                iso(self.dep["down_since"].get(live["instance_name"])) or "now",
                ", after " + describe_operation(op) if op else ""))
        return "; ".join(parts)

    def wait_ready(self, pending, failed=()):
        """Wait until every instance in ``pending`` reports ReadyRole after its operation ended, and every one in
        ``failed`` (a failed operation within the tolerance) is ReadyRole again: one still down stops the
        deployment, since its next batch would take a second upgrade domain down."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        remaining = {inst["instance"].lower(): inst for inst in pending}
        down = {inst["instance"].lower(): inst for inst in failed}
        last_seen = {}  # instance (lower) -> the status it last reported

        def probe():
            instances = self.client.get_deployment(svc, deployment_name=name)["role_instances"]
            self._last_look = (self.client.clock(), instances)
            return instances

        def settled(instances):
            seen_at = now()
            for live in instances:
                last_seen[live["instance_name"].lower()] = live["instance_status"]
                if live["instance_name"].lower() in down and live["instance_status"] == READY:
                    del down[live["instance_name"].lower()]
                inst = remaining.get(live["instance_name"].lower())
                if inst is None:
                    continue
                if live["instance_status"] == READY:
                    inst.update(outcome="done", end=seen_at)
                    del remaining[live["instance_name"].lower()]
                elif instance_settled(live["instance_status"]):  # settled, and not ReadyRole: stuck
                    self._fail(inst, "the instance is %s and will not recover by itself" % live["instance_status"],
                               "InstanceNotReady", instance_down=True)
                    del remaining[live["instance_name"].lower()]
            return not remaining and not down

        def say(_instances, elapsed):
            waiting = [inst["instance"] for inst in list(remaining.values()) + list(down.values())]
            self.say("[%s] waiting for %s to be ReadyRole after %s: %s (%ds so far of %ds, "
                     "rolling_reimage_ready_timeout)" % (
                         self.dep_key, ", ".join(waiting), "its " + self.words["verb"] if len(waiting) == 1 else
                         "their " + self.words["verb"], "; ".join("%s is %s" % (
                             i, last_seen.get(i.lower(), "not read yet")) for i in waiting), elapsed,
                         self.options["ready_timeout"]))

        timing = Timing(self.state)
        deadline = Deadline(self.options["ready_timeout"], clock=self.client.clock)
        try:
            done, _value, _polls = wait_until(probe, settled, deadline, self.client.sleep, None, self.client.poll,
                                              timing.expected("recovery") if pending else None,
                                              Heartbeat(say, SAY_WAITING_EVERY, clock=self.client.clock))
            if done and pending and not failed:
                timing.learn("recovery", deadline.elapsed)
        except AzureClassicError as err:
            for inst in list(remaining.values()):
                self._fail(inst, "could not read the instance's status: %s" % err.readable(), err.code or "Error",
                           instance_down=True)
            return
        for inst in remaining.values():
            self._fail(inst, "not ReadyRole within %ss of its %s: still %s (rolling_reimage_ready_timeout)" % (
                self.options["ready_timeout"], self.words["verb"], last_seen.get(inst["instance"].lower(), "unread")),
                "ReadyTimeout", instance_down=True)
        for inst in down.values():
            self._stop("%s is not ReadyRole after its failed %s; rolling on would take a second upgrade domain "
                       "down" % (inst["instance"], self.words["verb"]))

    def _check_health(self, instances):
        """Each instance's own health URL, once it is ReadyRole, all of the batch at once (each within
        rolling_reimage_health_timeout): one that does not answer as accepted stops the whole roll (the next batches
        of every deployment), as the roll's health gate does after a round."""
        def say(line):
            self.say("[%s] %s" % (self.dep_key, line))

        with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_HEALTH_CHECKS, len(instances) or 1)) as pool:
            answers = list(pool.map(lambda inst: (inst, self.health.for_instance(inst["host"], say=say)), instances))
        for inst, checked in answers:
            if checked is None:
                continue
            healthy, sentence = checked
            self.state.setdefault("health_checks", []).append({
                "at": now(), "when": "after its batch", "healthy": healthy, "sentence": sentence, "host": inst["host"],
                "deployment": self.dep_key})
            if healthy:
                say(sentence)
                continue
            inst["after_round_failure"] = sentence
            self.state["halted"] = self.state.get("halted") or "health check failed: " + sentence
            self._stop(self.state["halted"])

    def run_batch(self, index, roll_started):
        batch = self.dep["batches"][index]
        instances = [self.state["instances"][instance_key(self.dep_key, n)] for n in batch["instances"]]
        started = now()
        if self.state.get("halted"):  # an instance's health check failed in another deployment: the roll stops
            self._stop(self.state["halted"])
        # What the deployment and its history say now decides, not only the plan: another job, a reboot from
        # elsewhere or a stuck instance may have changed them since. The history is read again after a wait.
        if not self.dep["stopped"]:
            self._adopt_from_history(instances)
        if not self.dep["stopped"]:
            self._clear_to_send(instances, batch["upgrade_domain"], reuse_look=True)
        if self.dep["stopped"]:
            self.say("[%s] batch %d/%d, upgrade domain %s: not started: %s" % (
                self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"], self.dep["stop_reason"]))
            return
        self.say("[%s] batch %d/%d, upgrade domain %s: %s %s (roll elapsed %.1fs)" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"], self.words["doing"],
            ", ".join(batch["instances"]), started - roll_started))
        recovering = []
        for inst in instances:
            if self.dep["stopped"]:
                break
            if inst["outcome"] == "started" and inst.get("adopted"):
                followed = self._follow_adopted(inst)
            elif inst["outcome"] == "pending":
                followed = self._send(inst, batch["upgrade_domain"])
            else:
                continue  # failed before it was sent (an unusable history entry)
            if followed:
                recovering.append(inst)
            self._save()
        failed = [i for i in instances if i["outcome"] == "failed"]
        if recovering or (failed and not self.dep["stopped"]):
            self.wait_ready(recovering, [] if self.dep["stopped"] else failed)
        if self.health:
            self._check_health([i for i in recovering if i["outcome"] == "done"])
        self._save()
        done = sum(1 for i in instances if i["outcome"] == "done")
        failed = sum(1 for i in instances if i["outcome"] == "failed")
        self.say("[%s] batch %d/%d, upgrade domain %s: %s in %.1fs, %d %s, %d failed (roll elapsed %.1fs)%s" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"],
            "stopped" if self.dep["stopped"] else "done", now() - started, done, self.words["done"], failed,
            now() - roll_started,
            ": " + self.dep["stop_reason"] if self.dep["stopped"] else ""))
