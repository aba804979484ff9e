# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling engine behind the rolling_reimage role: rolling reimage, reboot or rebuild.

A roll is planned once (preflight, resume, batches) and then run round by round: round k runs batch k of
every deployment at the same time, one thread per deployment. Within a deployment, the operations of a batch
are sent back to back (the deployment's lock lets only one run at a time) and the batch's instances recover
together; the next batch starts when all of them report ReadyRole. A roll runs one kind of operation, chosen
when it is planned and kept in its state (``state["kind"]``).

Exactly once: what the service's own operation history shows decides what an earlier run of the same roll
already did, so a rerun after a crash, a timeout or on another machine never sends a second operation. The
JSON state file on the controller adds the roll's progress for the summary and the report.
"""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import json
import os
import stat
import tempfile
import threading
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._asm_xml import utc_epoch
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AcceptedRequestError, AzureClassicError, InputError, WaitTimeoutError, shown)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    NOT_RECOVERING, READY, Deadline, PollSchedule, instance_settled, wait_until)
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files

STATE_VERSION = 2
SAVE_EVERY = 1.0
# A batch held back by instances down in other upgrade domains says so at least this often (and looks again at least
# every AVAILABILITY_POLL_MAX seconds), so an operator is never left guessing for more than 30 s.
SAY_WAITING_EVERY = 20.0
AVAILABILITY_POLL_MAX = 10.0
# A read of the deployment this recent (seconds) is what it still is: the availability check before a batch reuses
# the previous batch's last look instead of reading again.
FRESH_LOOK = 1.0
DEFAULT_AVAILABILITY_TIMEOUT = 1800
# A roll's waits grow by 5 % of the time already waited (a module's by 10 %): its learned durations place the
# first look, and a late end is noticed sooner.
POLL_GROWTH = 0.05
DEFAULT_KIND = "reimage"
# The words each operation is named with in messages, the summary and each host's outcome.
OPERATION_WORDS = {
    "reimage": {"verb": "reimage", "done": "reimaged", "doing": "reimaging"},
    "reboot": {"verb": "reboot", "done": "rebooted", "doing": "rebooting"},
    "rebuild": {"verb": "rebuild", "done": "rebuilt", "doing": "rebuilding"},
}


def words(kind):
    """How operation ``kind`` is named: verb (reboot), done (rebooted), doing (rebooting)."""
    if kind not in OPERATION_WORDS:
        raise InputError("operation must be one of %s, not %r" % (", ".join(sorted(OPERATION_WORDS)), kind))
    return OPERATION_WORDS[kind]


def host_outcome_names(kind):
    """Outcomes a host reports after a roll of ``kind`` (the action's report step turns them into
    ok/changed/failed): done (this run), already (an earlier run), not (never reached), would (check mode)."""
    w = words(kind)
    return {"done": w["done"], "already": "already_" + w["done"], "not": "not_" + w["done"],
            "would": "would_" + w["verb"], "failed": "failed", "duplicate": "duplicate"}


# Outcomes of every kind that mean the host's instance changed (or would), and that mean it failed.
CHANGED_OUTCOMES = frozenset(name for kind in OPERATION_WORDS for key, name in host_outcome_names(kind).items()
                             if key in ("done", "would"))
FAILED_OUTCOMES = frozenset(name for kind in OPERATION_WORDS for key, name in host_outcome_names(kind).items()
                            if key in ("failed", "not"))


class RolloutError(AzureClassicError):
    """The roll cannot start (preflight) or its state cannot be used."""


def _now():
    return time.time()


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def target_from_hostvars(host, hostvars):
    """The instance a host stands for, from the variables the inventory plugin sets."""
    missing = [v for v in ("cloud_service", "role_instance") if not hostvars.get(v)]
    if not (hostvars.get("deployment_slot") or hostvars.get("deployment_name")):
        missing.append("deployment_slot or deployment_name")
    if missing:
        raise InputError("host %s does not name a role instance: it needs cloud_service, role_instance and "
                         "deployment_slot or deployment_name (missing: %s)" % (host, ", ".join(missing)))
    target = {
        "host": host,
        "cloud_service": names.check_name("cloud_service", hostvars["cloud_service"]),
        "role_instance": names.check_name("role_instance", hostvars["role_instance"]),
        "deployment_name": None, "deployment_slot": None,
    }
    if hostvars.get("deployment_name"):
        target["deployment_name"] = names.check_name("deployment_name", hostvars["deployment_name"])
    else:
        target["deployment_slot"] = names.check_slot(hostvars["deployment_slot"])
    return target


def roll_id(targets, kind=DEFAULT_KIND):
    """A roll is identified by the instances it targets, as the service names them (deployment name, not slot; in
    any letter case), and its operation: the same job run anywhere, or spelled another way, is the same roll, and
    a rolling reboot of instances just reimaged is a roll of its own. ``targets``: the planned instances
    (cloud_service, deployment_name, instance), or targets as hosts give them."""
    parts = sorted("%s/%s/%s" % (t["cloud_service"], t.get("deployment_name") or t.get("deployment_slot"),
                                 t.get("instance") or t.get("role_instance")) for t in targets)
    if kind != DEFAULT_KIND:
        parts.insert(0, "operation=" + words(kind)["verb"])
    return hashlib.sha256("\n".join(parts).lower().encode("utf-8")).hexdigest()[:16]


def default_state_path(roll):
    """~/.ansible/rolling_reimage/roll-<id>.json for the roll id ``roll``."""
    return os.path.join(os.path.expanduser("~"), ".ansible", "rolling_reimage", "roll-%s.json" % roll)


def default_state_file(roll):
    """The StateFile at default_state_path for the roll id ``roll``."""
    return StateFile(default_state_path(roll))


def default_report_path(state_path):
    """The HTML report goes beside the state file, with its name: roll-<id>.json -> roll-<id>.html."""
    path = os.path.splitext(state_path)[0] + ".html"
    return path + ".html" if path == state_path else path


class StateFile:
    """The roll's progress on the controller, written atomically (0600, in a 0700 folder) after every change.

    It is read only when it is safe to trust: not a symlink, owned by us, writable by nobody else (nor its
    folder), so another local user cannot plant request ids or outcomes in it.
    """

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def _refuse(self, why):
        raise RolloutError("the roll's state file %s %s; it is not used (fix it, or point "
                           "rolling_reimage_state_path elsewhere)" % (self.path, why), code="StateFile")

    def _check_owner_and_mode(self, info, what):
        problem = private_files.owner_and_mode_problem(info, what)
        if problem:
            self._refuse(problem)

    def load(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            self._check_owner_and_mode(os.stat(directory), "its folder")
        except FileNotFoundError:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse("is a symbolic link")
            raise RolloutError("cannot read the roll's state file %s: %s" % (self.path, exc.strerror),
                               code="StateFile") from None
        with os.fdopen(fd, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                self._refuse("is not a regular file")
            self._check_owner_and_mode(info, "it")
            try:
                state = json.load(handle)
            except ValueError as exc:
                raise RolloutError("the roll's state file %s is not valid JSON (%s): remove it, or set "
                                   "rolling_reimage_fresh to start a new roll" % (self.path, exc),
                                   code="StateFile") from None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return None
        for inst in state.get("instances", {}).values():
            if inst.get("request_id"):
                inst["request_id"] = names.check_request_id(inst["request_id"])
        return state

    def save(self, state):
        with self.lock:
            self._last_save = time.monotonic()
            text = _dump(state)
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".roll-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise

    def save_soon(self, state):
        """Save, at most once every SAVE_EVERY seconds: the file is progress for the summary, not what exactly
        once rests on (the service's history is), and saving a large roll after every change would cost
        O(instances) each time, O(instances^2) in all."""
        if time.monotonic() - getattr(self, "_last_save", 0.0) >= SAVE_EVERY:
            self.save(state)


def _dump(state):
    """The state as JSON; other threads may be adding keys to it meanwhile, so a changed dict is read again."""
    for _attempt in range(10):
        try:
            return json.dumps(state, indent=1, sort_keys=True)
        except RuntimeError:  # dictionary changed size during iteration
            time.sleep(0.01)
    return json.dumps(json.loads(json.dumps(state, default=str)), indent=1, sort_keys=True)


def _instance_key(dep_key, instance):
    return "%s/%s" % (dep_key, instance.lower())


def checked_history(client, service, since):
    """Every operation on ``service`` the history shows since ``since`` (the service's time), each request id
    checked before use."""
    operations = client.operation_history(service, since)
    for op in operations:
        try:
            op["request_id"] = names.check_request_id(op.get("request_id") or "")
        except InputError:
            # Kept, so the roll refuses instead of guessing: it is not an id that may go into a URL. The
            # parser has already dropped such an id (request_id None); the text the service sent names it.
            op["bad_request_id"] = op.get("operation_id") or op.get("request_id") or ""
            op["request_id"] = None
    return operations


def latest_operations(operations, kind=None):
    """The latest role-instance operation (of ``kind``, or of any kind) of each instance, as
    {(deployment name lower, instance lower): operation}."""
    latest = {}
    for op in operations:
        if not op["instance"] or (op["kind"] != kind if kind else op["kind"] is None):
            continue
        key = (op["deployment"], op["instance"])
        if key not in latest or op["started"] >= latest[key]["started"]:
            latest[key] = op
    return latest


def describe_operation(op):
    """An operation from the history, for messages: its name, id and start."""
    return "%s %s started %s" % (op.get("name") or "an operation", op.get("request_id") or op.get("bad_request_id"),
                                 _iso(op.get("started")) or "at an unknown time")


def _in_progress_holder(client, service, deployment_name, since):
    """Request id and name of an operation of any kind still running on the deployment, if the history shows one."""
    try:
        operations = client.operation_history(service, since, result="InProgress")
    except AzureClassicError:
        return None
    for op in operations:
        if op["deployment"] in ("", deployment_name.lower()):
            return "%s (%s%s)" % (op.get("request_id"), op.get("name") or "operation",
                                  " of " + op["parameters"]["roleinstancename"] if op["instance"] else "")
    return None


class _Planner:
    """Preflight and resume: reads each deployment and the service's operation history, lists every
    problem, settles what an earlier run left in flight, and writes the batches."""

    def __init__(self, client, targets, options, state_file, say, check_mode):
        self.client = client
        self.targets = targets
        self.options = options
        self.state_file = state_file
        self.say = say
        self.check_mode = check_mode
        self.kind = options.get("operation") or DEFAULT_KIND
        self.words = words(self.kind)
        self.problems = []
        self.notes = []

    def _group_targets(self):
        by_address = {}
        for target in self.targets:
            address = (target["cloud_service"].lower(), target["deployment_slot"] or "",
                       (target["deployment_name"] or "").lower())
            by_address.setdefault(address, []).append(target)
        return by_address

    def _read_deployment(self, sample):
        try:
            return self.client.get_deployment(sample["cloud_service"], sample["deployment_slot"],
                                              sample["deployment_name"])
        except AzureClassicError as err:
            where = ("deployment %s" % sample["deployment_name"] if sample["deployment_name"]
                     else "the %s slot" % sample["deployment_slot"])
            self.problems.append("cannot read %s of cloud service %s: %s" % (
                where, sample["cloud_service"], err.readable()))
            return None

    def _read_history(self, services, since):
        """({(service, deployment, instance): latest operation of the roll's kind},
        {(service, deployment, instance): latest role-instance operation of any kind}), since ``since``."""
        history, anything = {}, {}
        for service in sorted(services):
            try:
                operations = checked_history(self.client, service, since)
            except AzureClassicError as err:
                self.problems.append("cannot read the operation history of cloud service %s, which decides what an "
                                     "earlier run of this roll already did: %s" % (service, err.readable()))
                continue
            for (dep, inst), op in latest_operations(operations, self.kind).items():
                history[(service.lower(), dep, inst)] = op
            for (dep, inst), op in latest_operations(operations).items():
                anything[(service.lower(), dep, inst)] = op
        return history, anything

    def _local(self, service_time):
        """A time of the service's history on the controller's clock, as the state file keeps times."""
        return service_time - (self.client.clock_offset or 0.0) if service_time else service_time

    def _refuse(self):
        problems = [shown(problem) for problem in self.problems]  # they quote the service's statuses and names
        text = problems[0] if len(problems) == 1 else "%d problems:\n- %s" % (len(problems), "\n- ".join(problems))
        raise RolloutError("preflight refused the roll: " + text, code="PreflightFailed")

    def _resolve(self):
        """Read each targeted deployment: (deployments, instances, hosts, live instances by deployment), every
        instance keyed by what the service calls it."""
        by_address = self._group_targets()
        deployments, instances, hosts, live_by_dep = {}, {}, {}, {}
        for address in sorted(by_address):
            group = by_address[address]
            deployment = self._read_deployment(group[0])
            if deployment is None:
                for target in group:
                    hosts[target["host"]] = None
                continue
            # Names are case-insensitive to the service: one spelling per deployment, or one instance could be
            # planned twice under two spellings.
            service = group[0]["cloud_service"].lower()
            dep_key = "%s/%s" % (service, deployment["name"])
            deployments.setdefault(dep_key, {
                "cloud_service": service, "deployment_name": deployment["name"], "slot": deployment["slot"],
                "stopped": False, "stop_reason": None, "batches": [], "failures": 0,
                "locked": bool(deployment["locked"]), "status": deployment["status"]})
            live = {i["instance_name"].lower(): i for i in deployment["role_instances"]}
            live_by_dep[dep_key] = live
            for target in group:
                inst = live.get(target["role_instance"].lower())
                if inst is None:
                    self.problems.append("host %s: role instance %s does not exist in %s" % (
                        target["host"], target["role_instance"], dep_key))
                    hosts[target["host"]] = None
                    continue
                key = _instance_key(dep_key, inst["instance_name"])
                hosts[target["host"]] = key
                if key in instances:
                    continue  # two hosts naming one instance: roll it once, the first host reports it
                instances[key] = {
                    "host": target["host"], "deployment": dep_key, "cloud_service": service,
                    "deployment_name": deployment["name"], "instance": inst["instance_name"],
                    "role": inst["role_name"], "upgrade_domain": inst["upgrade_domain"],
                    "outcome": "pending", "request_id": None, "start": None, "end": None, "error": None,
                    "resumed": False, "round": None}
        return deployments, instances, hosts, live_by_dep

    def rebuild(self, roll):
        """The state of a roll whose state file is gone, from the service: each target counts as done when the
        history shows the roll's operation on it since the roll's window (by this run when it started after the roll
        did), and as not done otherwise. ``roll``: the plan's window_start, counts_since and service_started."""
        deployments, instances, hosts, _live = self._resolve()
        for dep in deployments.values():
            del dep["locked"], dep["status"]
        history, _anything = self._read_history({d["cloud_service"] for d in deployments.values()},
                                                roll.get("counts_since") or roll["window_start"])
        for inst in instances.values():
            if self.problems:  # a deployment or the history could not be read: say so, never guess
                inst.update(outcome="failed", error={"code": "OutcomeUnknown", "request_id": None, "message": (
                    "whether it was %s is unknown: %s" % (self.words["done"], "; ".join(self.problems)))})
                continue
            op = history.get((inst["cloud_service"], inst["deployment_name"].lower(), inst["instance"].lower()))
            if op is None or op.get("status") == "Failed" or not op.get("request_id"):
                dep = deployments[inst["deployment"]]
                dep.update(stopped=True, stop_reason=dep["stop_reason"] or "the roll stopped before reaching it")
                if op is not None:
                    inst.update(outcome="failed", request_id=op.get("request_id"), error={
                        "code": "OperationFailed", "message": "its %s, %s, did not succeed" % (
                            self.words["verb"], describe_operation(op)), "request_id": op.get("request_id")})
                continue
            inst.update(request_id=op["request_id"], start=self._local(op["started"]), resumed=op["started"] < roll.get(
                "service_started", 0), outcome="done" if op.get("status") == "Succeeded" else "started")
            if inst["outcome"] == "started":
                inst["error"] = {"code": "InProgress", "message": "its %s, %s, was still running" % (
                    self.words["verb"], describe_operation(op)), "request_id": op["request_id"]}
        return {"version": STATE_VERSION, "roll_id": self.options["roll_id"], "kind": self.kind, "status": "running",
                "started": roll.get("started") or _now(), "resumed": False, "rebuilt": True,
                "window_start": roll["window_start"], "counts_since": roll.get("counts_since"),
                "deployments": deployments, "instances": instances, "hosts": hosts, "options": {},
                "rounds": 0, "last_round": None, "problems": list(self.problems)}

    def plan(self):
        options = self.options
        deployments, instances, hosts, live_by_dep = self._resolve()

        # The roll's identity and its state file follow from the instances as the service names them.
        options["roll_id"] = roll_id(list(instances.values()) or self.targets, self.kind)
        if callable(self.state_file):
            self.state_file = self.state_file(options["roll_id"])
        previous = None if options["fresh"] else self.state_file.load()
        if previous is not None and (previous.get("roll_id") != options["roll_id"]
                                     or (previous.get("kind") or DEFAULT_KIND) != self.kind):
            previous = None
        # Windows are on the service's clock (the Date of the answers just read), so a controller clock minutes off
        # changes nothing; only the state file's own times are the controller's.
        service_now = self.client.service_now()
        window_start = self.window_start = options.get("since") or service_now - options["resume_window"]
        self.local_window_start = window_start - (self.client.clock_offset or 0.0)
        history, anything = self._read_history({d["cloud_service"] for d in deployments.values()}, window_start)
        if options["fresh"]:
            # A new roll of the same instances: what ended before counts for nothing, but an operation still
            # running is followed, never sent again.
            history = {k: op for k, op in history.items() if op.get("status") == "InProgress"}
        own_in_flight = self._resume(instances, previous, history)
        self._preflight(deployments, instances, live_by_dep, own_in_flight, window_start, anything)
        if self.problems:
            self._refuse()
        if own_in_flight and not self.check_mode:
            self._settle(deployments, instances, own_in_flight)
        self._batch(deployments, instances)

        state = {"version": STATE_VERSION, "roll_id": options["roll_id"], "kind": self.kind, "status": "running",
                 "started": (previous or {}).get("started") or _now(), "resumed": any(
                     i["resumed"] for i in instances.values()) or bool(own_in_flight),
                 # On the service's clock: from when an operation of the roll's kind on a target, by anyone, counts
                 # as done for this roll (a fresh roll counts from now).
                 "window_start": window_start, "service_started": service_now,
                 "counts_since": service_now if options["fresh"] else window_start,
                 "deployments": deployments, "instances": instances, "hosts": hosts,
                 "options": dict({k: options[k] for k in ("max_failures", "operation_timeout", "ready_timeout",
                                                          "max_parallel", "poll_interval", "max_requests_per_second")},
                                 availability_timeout=options.get("availability_timeout",
                                                                  DEFAULT_AVAILABILITY_TIMEOUT)),
                 "rounds": max([len(d["batches"]) for d in deployments.values()] + [0]), "last_round": None}
        if not self.check_mode:
            self.state_file.save(state)
        for note in self.notes:
            self.say(shown(note))  # one line each, quoting the service's statuses and names
        self.say(describe_plan(state, self.check_mode))
        return state

    def _resume(self, instances, previous, history):
        """Mark what an earlier run of this roll did; returns the keys of instances whose operation an earlier run
        started and whose outcome is not known yet (to be followed, never re-sent)."""
        old = (previous or {}).get("instances", {})
        in_flight = []
        for key, inst in instances.items():
            was = old.get(key) or {}
            if (was.get("start") or 0) < self.local_window_start:
                was = {}  # older than the window: another roll's, like the service's history before it
            op = history.get((inst["cloud_service"].lower(), inst["deployment_name"].lower(), inst["instance"].lower()))
            if op is not None and op.get("bad_request_id") is not None:
                self.problems.append("the service's history shows a %s of %s/%s whose id %r is not an operation id; "
                                     "the roll will not guess whether it happened" % (
                                         self.words["verb"], inst["deployment"], inst["instance"],
                                         op["bad_request_id"]))
                continue
            if was.get("outcome") == "done":
                inst.update(outcome="done", resumed=True, request_id=was.get("request_id"),
                            start=was.get("start"), end=was.get("end"))
                continue
            if op is not None:
                request_id, status = op["request_id"], op.get("status")
            elif was.get("request_id"):
                request_id = was["request_id"]
                status = self._status_of(request_id)
            else:
                continue
            if status is None:
                continue  # a problem was recorded: the roll is refused
            if status == "Succeeded":
                inst.update(outcome="done", resumed=True, request_id=request_id,
                            start=self._local(op["started"]) if op else was.get("start"))
                in_flight.append(key)  # done, but it may still be recovering: waited for before the first round
            elif status == "InProgress":
                inst.update(outcome="started", resumed=True, request_id=request_id,
                            start=self._local(op["started"]) if op else was.get("start"))
                in_flight.append(key)
            # Failed: the service says the operation left the instance as it was, so it is sent again.
        done = [i for i in instances.values() if i["outcome"] == "done"]
        if done:
            self.notes.append("resuming: %d instance(s) already %s by an earlier run of this roll or another job (the "
                              "service's operation history since %s decides; to roll them again, set "
                              "rolling_reimage_since to a later time)" % (
                                  len(done), self.words["done"], _iso(self.window_start)))
        return in_flight

    def _status_of(self, request_id):
        try:
            return self.client.get_operation(request_id)["status"]
        except AzureClassicError as err:
            self.problems.append("cannot read operation %s that an earlier run of this roll started, so whether it "
                                 "happened is unknown: %s" % (request_id, err.readable()))
            return None

    def _preflight(self, deployments, instances, live_by_dep, own_in_flight, window_start, anything):
        """List what stops the roll from starting. An instance down because of a role-instance operation (anyone's:
        running, or ended within ready_timeout) is no reason to refuse: each batch waits while an instance of another
        upgrade domain is down. One down for no such reason is, unless rolling_reimage_allow_unready accepts it."""
        recovering = set(own_in_flight)
        recent = self.client.service_now() - self.options["ready_timeout"]
        for dep_key, dep in sorted(deployments.items()):
            locked, status = dep.pop("locked"), dep.pop("status") or ""
            service, name = dep["cloud_service"], dep["deployment_name"].lower()
            dep["accepted_down"] = []
            ours = [instances[k] for k in own_in_flight if instances[k]["deployment"] == dep_key]
            working = [op for (svc, dep_name, _inst), op in anything.items()
                       if svc == service and dep_name == name and op.get("status") == "InProgress"]
            for op in working:
                if not any(i["request_id"] == op["request_id"] for i in ours):
                    self.notes.append("%s: %s (%s) is under way; the batch it would overlap waits for it" % (
                        dep_key, describe_operation(op), op["parameters"].get("roleinstancename")))
            # Our own operation may hold the lock, and our own recovering instances may keep it transitioning; so may
            # another client's operation on one instance, which the batches wait for.
            if (locked and not working and not any(i["outcome"] == "started" for i in ours)) or (
                    status.endswith("Transitioning") and not ours and not working):
                if locked:
                    holder = _in_progress_holder(self.client, dep["cloud_service"], dep["deployment_name"],
                                                 window_start)
                    why = "another operation holds its lock (%s)" % (
                        "operation " + holder if holder else "the operation history does not name it")
                else:
                    why = "the service is changing it"
                self.problems.append("%s is busy (status %s%s): %s; wait for it to end" % (
                    dep_key, status, ", locked" if locked else "", why))
            for live in sorted(live_by_dep[dep_key].values(), key=lambda i: i["instance_name"]):
                key = _instance_key(dep_key, live["instance_name"])
                status = live["instance_status"]
                if key in recovering:
                    if status in NOT_RECOVERING:
                        self.problems.append(
                            "%s was %s by an earlier run of this roll (operation %s) and is %s: it will not "
                            "recover by itself; repair that instance (for example with the role_instance_%s module), "
                            "then run the roll again" % (
                                dep_key + "/" + live["instance_name"], self.words["done"],
                                instances[key]["request_id"], status, self.words["verb"]))
                    continue  # our own instance, still recovering: waited for before the first round
                if status == READY:
                    continue
                # Down because of an operation (running, or ended so recently it may still recover): waited for,
                # never accepted, so that no batch overlaps it.
                op = anything.get((service, name, live["instance_name"].lower()))
                if op is not None and status not in NOT_RECOVERING and (
                        op.get("status") == "InProgress" or (op.get("status") == "Succeeded" and _ended_after(op, recent))):
                    self.notes.append("%s: instance %s is %s after %s; batches of other upgrade domains wait until it "
                                      "is ReadyRole (rolling_reimage_availability_timeout)" % (
                                          dep_key, live["instance_name"], status, describe_operation(op)))
                    continue
                if self.options["allow_unready"]:
                    dep["accepted_down"].append(live["instance_name"].lower())
                    self.notes.append("%s: instance %s is %s; accepted (rolling_reimage_allow_unready)%s" % (
                        dep_key, live["instance_name"], status,
                        ": a target, so its upgrade domain goes first" if key in instances else
                        ": not a target, so batches do not wait for it while it stays down"))
                    continue
                self.problems.append(
                    "%s: instance %s is %s: %s other instances now would cut availability further "
                    "(wait for it, or set rolling_reimage_allow_unready)" % (
                        dep_key, live["instance_name"], status, self.words["doing"]))

    def _settle(self, deployments, instances, own_in_flight):
        """Follow what an earlier run left in flight until it ends and its instances are ReadyRole."""
        by_dep = {}
        for key in own_in_flight:
            by_dep.setdefault(instances[key]["deployment"], []).append(instances[key])
        for dep_key, pending in sorted(by_dep.items()):
            self.say("[%s] following %d %s(s) an earlier run of this roll (or another job) started: %s" % (
                dep_key, len(pending), self.words["verb"],
                ", ".join("%s (%s)" % (i["instance"], i["request_id"]) for i in pending)))
            runner = _DeploymentRunner(self.client, {"deployments": deployments, "instances": instances,
                                                     "kind": self.kind}, None, dep_key, self.options, self.say)
            recovering = [inst for inst in pending if runner.follow(inst)]
            if recovering:
                runner.wait_ready(recovering)
            for inst in pending:
                if inst["outcome"] == "failed":
                    if (inst.get("error") or {}).get("code") == "OperationFailed":
                        # The service says the operation failed: the instance was left as it was; send it again.
                        inst.update(outcome="pending", error=None, resumed=False)
                        continue
                    self.problems.append("%s/%s: %s" % (dep_key, inst["instance"], inst["error"]["message"]))
                else:
                    inst["resumed"] = True
            deployments[dep_key].update(failures=0, stopped=False, stop_reason=None)
        if self.problems:
            self._refuse()

    def _batch(self, deployments, instances):
        for dep_key, entry in deployments.items():
            # Targets already down (accepted by rolling_reimage_allow_unready) go first and their upgrade domain
            # leads: the roll repairs them, instead of taking another domain down while they are.
            broken = set(entry.get("accepted_down") or ())
            leading = {i["upgrade_domain"] for i in instances.values()
                       if i["deployment"] == dep_key and i["instance"].lower() in broken}
            # Still "started" only in check mode, where what an earlier run left in flight is not followed.
            todo = sorted((i for i in instances.values()
                           if i["deployment"] == dep_key and i["outcome"] not in ("done", "started")),
                          key=lambda i: (i["upgrade_domain"] not in leading, i["upgrade_domain"],
                                         i["instance"].lower() not in broken, i["role"], i["instance"]))
            batches = []
            for inst in todo:
                if batches and batches[-1]["upgrade_domain"] == inst["upgrade_domain"] and (
                        not self.options["batch_size"] or len(batches[-1]["instances"]) < self.options["batch_size"]):
                    batches[-1]["instances"].append(inst["instance"])
                else:
                    batches.append({"upgrade_domain": inst["upgrade_domain"], "instances": [inst["instance"]]})
                inst["round"] = len(batches) - 1
            entry["batches"] = batches


def _ended_after(op, when):
    """Whether the history says ``op`` ended at or after ``when`` (the service's time)."""
    ended = utc_epoch(op.get("completed_time"))
    return ended is not None and ended >= when


def rebuild(client, targets, options, roll, say):
    """A roll's state rebuilt from the service's history, for its summary when the state file is gone."""
    return _Planner(client, targets, options, None, say, True).rebuild(roll)


def plan(client, targets, options, state_file, say, check_mode=False):
    """Preflight the targets against live state, resume what an earlier run of the roll did, and write the
    plan (not in check mode); returns the state. ``state_file``: a StateFile, or a function of the roll's id that
    gives one (the id is known once the instances are read)."""
    planner = _Planner(client, targets, options, state_file, say, check_mode)
    state = planner.plan()
    state["state_path"] = planner.state_file.path if not callable(planner.state_file) else None
    return state


def describe_plan(state, check_mode=False):
    """The plan as lines: per round, each deployment's batch; what is skipped as already done."""
    w = words(state.get("kind") or DEFAULT_KIND)
    lines = ["rolling %s%s: %d instance(s) in %d deployment(s), %d round(s)" % (
        w["verb"], " (check mode: nothing is sent)" if check_mode else "", len(state["instances"]),
        len(state["deployments"]), state["rounds"])]
    for index in range(state["rounds"]):
        lines.append("round %d:" % (index + 1))
        for dep_key, dep in sorted(state["deployments"].items()):
            if index < len(dep["batches"]):
                batch = dep["batches"][index]
                lines.append("  %s upgrade domain %s: %s" % (
                    dep_key, batch["upgrade_domain"], ", ".join(batch["instances"])))
    done = sorted("%s/%s" % (i["deployment"], i["instance"]) for i in state["instances"].values()
                  if i["outcome"] == "done")
    if done:
        lines.append("already %s in this roll, skipped: %s" % (w["done"], ", ".join(done)))
    return "\n".join(lines)


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


class _BatchHeld(AzureClassicError):
    """A batch may not go on: instances of other upgrade domains stayed down (the deployment is stopped)."""


class _DeploymentRunner:
    def __init__(self, client, state, state_file, dep_key, options, say):
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

    def _save(self):
        if self.state_file is not None:
            self.state_file.save_soon(self.state)

    def _fail(self, inst, message, code, request_id=None, instance_down=False):
        """Record a failed instance. One that is (or may still be) down stops the deployment whatever
        rolling_reimage_max_failures says: rolling on would take a second upgrade domain down."""
        message = shown(message)  # it may quote the service: its status, its words
        inst.update(outcome="failed", end=_now(), error={"code": code, "message": message,
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
        try:
            operation = self.client.wait_for_operation(
                inst["request_id"], Deadline(self.options["operation_timeout"]), probe_first=accepted_at is None,
                expected=timing.expected("operation") if accepted_at is not None else None)
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
        inst["operation_end"] = _now()
        if accepted_at is not None:
            timing.learn("operation", inst["operation_end"] - accepted_at)
        return True

    def _send(self, inst, upgrade_domain):
        """Send the roll's operation and wait for it; returns True when it Succeeded."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        inst.update(start=_now(), outcome="started", request_id=None)
        # Saved before sending: if this run dies before the answer, the next one asks the service what happened.
        self._save()

        def recheck(_holder):
            # Another operation held the deployment's lock, and the deployment may have changed while it did. Nothing
            # is sent when the history cannot tell (the deployment stopped) or shows an unusable entry (failed).
            self._adopt_from_history([inst])
            if inst.get("adopted"):
                return inst["request_id"]
            if self.dep["stopped"] or inst["outcome"] == "failed" or not self._wait_for_other_domains(upgrade_domain):
                raise _BatchHeld(self.dep["stop_reason"])
            return None

        try:
            # The client checks the id the service answered with before it is kept or put into a URL.
            request_id = self.client.role_instance_operation(
                self.kind, svc, inst["instance"], deployment_name=name,
                deadline=Deadline(self.options["operation_timeout"]), recheck=recheck,
                on_lock_wait=self._progress("%s waits for the deployment's lock" % inst["instance"]))
        except _BatchHeld:
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
        return self.follow(inst, accepted_at=_now())

    def _progress(self, what):
        """An on_poll callback that says ``what`` the roll waits for, and for how long, every SAY_WAITING_EVERY
        seconds: a wait is never silent for more than 30 s."""
        clock = self.client.clock
        started, said = clock(), [clock()]

        def say(value):
            now = clock()
            if now - said[0] >= SAY_WAITING_EVERY:
                said[0] = now
                status = value.get("status") if isinstance(value, dict) else None
                self.say("[%s] %s (%s%ds so far)" % (
                    self.dep_key, what, "%s, " % status if status else "", now - started))
        return say

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
            inst.update(outcome="started", request_id=op["request_id"], start=_now(), adopted=True)

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
            now = _now()
            for live in down:
                down_since.setdefault(live["instance_name"], now)
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
                _iso(self.dep["down_since"].get(live["instance_name"])) or "now",
                ", after " + describe_operation(op) if op else ""))
        return "; ".join(parts)

    def wait_ready(self, pending, failed=()):
        """Wait until every instance in ``pending`` reports ReadyRole after its operation ended, and every one in
        ``failed`` (a failed operation within the tolerance) is ReadyRole again: one still down stops the
        deployment, since its next batch would take a second upgrade domain down."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        remaining = {inst["instance"].lower(): inst for inst in pending}
        down = {inst["instance"].lower(): inst for inst in failed}

        def probe():
            instances = self.client.get_deployment(svc, deployment_name=name)["role_instances"]
            self._last_look = (self.client.clock(), instances)
            return instances

        def settled(instances):
            now = _now()
            for live in instances:
                if live["instance_name"].lower() in down and live["instance_status"] == READY:
                    del down[live["instance_name"].lower()]
                inst = remaining.get(live["instance_name"].lower())
                if inst is None:
                    continue
                if live["instance_status"] == READY:
                    inst.update(outcome="done", end=now)
                    del remaining[live["instance_name"].lower()]
                elif instance_settled(live["instance_status"]):  # settled, and not ReadyRole: stuck
                    self._fail(inst, "the instance is %s and will not recover by itself" % live["instance_status"],
                               "InstanceNotReady", instance_down=True)
                    del remaining[live["instance_name"].lower()]
            return not remaining and not down

        timing = Timing(self.state)
        deadline = Deadline(self.options["ready_timeout"])
        try:
            done, _value, _polls = wait_until(probe, settled, deadline, self.client.sleep, None, self.client.poll,
                                              timing.expected("recovery") if pending else None)
            if done and pending and not failed:
                timing.learn("recovery", deadline.elapsed)
        except AzureClassicError as err:
            for inst in list(remaining.values()):
                self._fail(inst, "could not read the instance's status: %s" % err.readable(), err.code or "Error",
                           instance_down=True)
            return
        for inst in remaining.values():
            self._fail(inst, "not ReadyRole within %ss of its %s" % (self.options["ready_timeout"], self.words["verb"]),
                       "ReadyTimeout", instance_down=True)
        for inst in down.values():
            self._stop("%s is not ReadyRole after its failed %s; rolling on would take a second upgrade domain "
                       "down" % (inst["instance"], self.words["verb"]))

    def run_batch(self, index, roll_started):
        batch = self.dep["batches"][index]
        instances = [self.state["instances"][_instance_key(self.dep_key, n)] for n in batch["instances"]]
        started = _now()
        # What the deployment and its history say now decides, not only the plan: another job, a reboot from
        # elsewhere or a stuck instance may have changed them since. The history is read again after a wait.
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
        self._save()
        done = sum(1 for i in instances if i["outcome"] == "done")
        failed = sum(1 for i in instances if i["outcome"] == "failed")
        self.say("[%s] batch %d/%d, upgrade domain %s: %s in %.1fs, %d %s, %d failed (roll elapsed %.1fs)%s" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"],
            "stopped" if self.dep["stopped"] else "done", _now() - started, done, self.words["done"], failed,
            _now() - roll_started,
            ": " + self.dep["stop_reason"] if self.dep["stopped"] else ""))


def run_round(client_factory, state, state_file, index, say):
    """Run batch ``index`` of every deployment that is not stopped, deployments in parallel."""
    options = state["options"]
    runners = [dep_key for dep_key, dep in sorted(state["deployments"].items())
               if not dep["stopped"] and index < len(dep["batches"])]
    if not runners:
        return 0
    state["last_round"] = index
    roll_started = state.get("started") or _now()

    def work(dep_key):
        client = client_factory(fair_poll_interval(options, len(runners)))
        try:
            _DeploymentRunner(client, state, state_file, dep_key, options, say).run_batch(index, roll_started)
        finally:
            client.close()

    _in_parallel(work, runners, options, state, state_file)
    return len(runners)


def run_all_rounds(client_factory, state, state_file, say):
    """Run every batch of every deployment with no barrier between rounds: each deployment goes on to its next
    batch as soon as its own is ReadyRole, instead of waiting for the slowest deployment of the round. Only
    for rolls with nothing to run between rounds (no health gate); the availability bound is per deployment,
    so it holds the same. Returns how many deployments rolled."""
    options = state["options"]
    runners = [dep_key for dep_key, dep in sorted(state["deployments"].items()) if not dep["stopped"] and dep["batches"]]
    if not runners:
        return 0
    roll_started = state.get("started") or _now()

    def work(dep_key):
        client = client_factory(fair_poll_interval(options, len(runners)))
        try:
            runner = _DeploymentRunner(client, state, state_file, dep_key, options, say)
            for index in range(len(state["deployments"][dep_key]["batches"])):
                if state["deployments"][dep_key]["stopped"]:
                    break
                state["last_round"] = max(state.get("last_round") or 0, index)
                runner.run_batch(index, roll_started)
        finally:
            client.close()

    _in_parallel(work, runners, options, state, state_file)
    return len(runners)


def fair_poll_interval(options, deployments):
    """The shortest polling interval for ``deployments`` rolling at once: each deployment's share of the
    request-rate ceiling. Before the roll has learned how long its operations take, every deployment polls on
    the growing schedule at once; faster than its share, their polls would only queue behind each other."""
    workers = min(deployments, options["max_parallel"] or deployments)
    return max(options["poll_interval"], workers / float(options.get("max_requests_per_second") or 40))


def _in_parallel(work, runners, options, state, state_file):
    # max_parallel 0: every deployment at once (the request-rate ceiling, not a thread count, bounds the load).
    workers = min(len(runners), options["max_parallel"] or len(runners))
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(work, dep_key) for dep_key in runners]:
                future.result()
    finally:
        state_file.save(state)


def stop_all(state, state_file, reason):
    """Stop every deployment's roll; the instances of the round just run carry the reason, since the check
    that failed (a health gate, a task after the round) judged them."""
    for dep in state["deployments"].values():
        if not dep["stopped"]:
            dep["stopped"] = True
            dep["stop_reason"] = reason
    last = state.get("last_round")
    if last is not None:
        for inst in state["instances"].values():
            if inst.get("round") == last and inst["outcome"] == "done" and not inst.get("resumed"):
                inst["after_round_failure"] = reason
    state_file.save(state)


def row_outcome(inst):
    """How an instance ended, for the table, the summary and the report: done, skipped, untouched or failed."""
    if inst["outcome"] == "done":
        return "skipped" if inst.get("resumed") or inst.get("adopted") else "done"
    if inst["outcome"] == "pending":
        return "untouched"
    return "failed"  # failed, or started by this run and never followed to its end


def summarize(state, state_file):
    """Close the roll: compute the outcome of every instance and host; returns the summary."""
    rows = []
    counts = {"done": 0, "failed": 0, "untouched": 0, "skipped": 0}

    def order(key):
        inst = state["instances"][key]
        return inst["deployment"], inst["upgrade_domain"], key

    for key in sorted(state["instances"], key=order):
        inst = state["instances"][key]
        outcome = row_outcome(inst)
        counts[outcome] += 1
        rows.append({"host": inst["host"], "deployment": inst["deployment"], "instance": inst["instance"],
                     "role": inst["role"], "upgrade_domain": inst["upgrade_domain"], "request_id": inst["request_id"],
                     "start": _iso(inst["start"]), "end": _iso(inst["end"]), "outcome": outcome,
                     "error": inst["error"]["message"] if inst.get("error") else None})
    stopped = {k: d["stop_reason"] for k, d in state["deployments"].items() if d["stopped"]}
    # Failures within the tolerance (rolling_reimage_max_failures) do not stop a deployment or fail the roll.
    state["status"] = "failed" if stopped or counts["untouched"] else "complete"
    state["finished"] = _now()
    state_file.save(state)
    return {"status": state["status"], "operation": state.get("kind") or DEFAULT_KIND, "counts": counts,
            "stopped_deployments": stopped, "instances": rows, "state_path": state_file.path,
            "elapsed": round(state["finished"] - state["started"], 1), "hosts": host_outcomes(state),
            "rebuilt": bool(state.get("rebuilt"))}


def host_outcomes(state, check_mode=False):
    """What each host of the roll reports: {host: {"outcome", "msg", ...}}."""
    kind = state.get("kind") or DEFAULT_KIND
    w, outcomes = words(kind), host_outcome_names(kind)
    result = {}
    for host, key in sorted(state["hosts"].items()):
        inst = state["instances"].get(key) if key else None
        if inst is None:
            result[host] = {"outcome": "failed", "msg": "the roll could not use this host's instance (%s)" % (
                shown("; ".join(state["problems"])) if state.get("problems") else "see the plan")}
            continue
        where = "%s/%s (upgrade domain %s)" % (inst["deployment"], inst["instance"], inst["upgrade_domain"])
        record = {"instance": where, "request_id": inst["request_id"], "operation": kind}
        if inst["host"] != host:
            record.update(outcome="duplicate", msg="%s is the same instance as host %s, which reports it" % (
                where, inst["host"]))
        elif inst["outcome"] == "done" and inst.get("adopted"):
            record.update(outcome=outcomes["already"], msg="%s was %s during this roll by another client (operation "
                          "%s): followed, not sent again" % (where, w["done"], inst["request_id"]))
        elif inst["outcome"] == "done" and inst.get("resumed"):
            record.update(outcome=outcomes["already"], msg="%s was already %s by an earlier run of this roll or "
                          "another job (operation %s)" % (where, w["done"], inst["request_id"]))
        elif check_mode and inst["outcome"] == "started":
            record.update(outcome="in_progress", msg="%s: operation %s, started by an earlier run of this roll, is "
                                                     "still running; it would be followed, not sent again" % (
                                                         where, inst["request_id"]))
        elif check_mode:
            record.update(outcome=outcomes["would"], round=inst["round"] + 1,
                          msg="%s would be %s in round %d" % (where, w["done"], inst["round"] + 1))
        elif inst["outcome"] == "done" and inst.get("after_round_failure"):
            record.update(outcome="failed", msg="%s was %s (operation %s), but the roll stopped after its batch: %s" % (
                where, w["done"], inst["request_id"], inst["after_round_failure"]))
        elif inst["outcome"] == "done":
            record.update(outcome=outcomes["done"], msg="%s %s (operation %s)" % (where, w["done"], inst["request_id"]))
        elif inst["outcome"] == "pending":
            dep = state["deployments"][inst["deployment"]]
            record.update(outcome=outcomes["not"], msg="%s was not %s: its deployment's roll stopped before "
                                                       "reaching it (%s)" % (
                                                           where, w["done"],
                                                           (dep["stop_reason"] or "stopped").rstrip(".")))
        else:
            error = inst.get("error") or {}
            record.update(outcome="failed", code=error.get("code"), msg="%s: %s" % (
                where, (error.get("message") or "the %s did not finish" % w["verb"]).rstrip(".")))
        if state.get("rebuilt"):
            record["msg"] += (" (rebuilt from the service's operation history: the roll's state file was gone)")
        if record["outcome"] in FAILED_OUTCOMES:
            record["msg"] += ("; run the roll again (on any machine, within rolling_reimage_resume_window) to finish "
                              "it: what it already %s is not sent again" % w["done"])
        result[host] = record
    return result


def format_table(summary):
    header = ("instance", "UD", "request id", "start", "end", "outcome")
    lines = [tuple(shown(cell) for cell in (
        r["deployment"] + "/" + r["instance"], str(r["upgrade_domain"]), r["request_id"] or "-",
        (r["start"] or "-")[11:19] or "-", (r["end"] or "-")[11:19] or "-",
        r["outcome"] + (" (%s)" % r["error"] if r["error"] else ""))) for r in summary["instances"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    c = summary["counts"]
    w = words(summary.get("operation") or DEFAULT_KIND)
    out.append("rolling %s %s in %.1fs: %d %s, %d failed, %d untouched, %d skipped (done earlier)" % (
        w["verb"], summary["status"], summary["elapsed"], c["done"], w["done"], c["failed"], c["untouched"],
        c["skipped"]))
    if summary.get("rebuilt"):
        out.append("the roll's state file was gone: these outcomes are rebuilt from the service's operation history")
    if summary.get("report_path"):
        out.append("report: %s" % summary["report_path"])
    return "\n".join(out)
