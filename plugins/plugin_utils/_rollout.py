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
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AzureClassicError, InputError, WaitTimeoutError, shown)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    NOT_RECOVERING, READY, Deadline, instance_settled, wait_until)
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files

STATE_VERSION = 2
SAVE_EVERY = 1.0
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
    """A roll is identified by the instances it targets and its operation, so the same job run anywhere is the
    same roll, and a rolling reboot of instances just reimaged is a roll of its own. (A reimage roll keeps the
    id it had before other operations existed.)"""
    parts = sorted("%s/%s/%s" % (t["cloud_service"], t["deployment_name"] or t["deployment_slot"], t["role_instance"])
                   for t in targets)
    if kind != DEFAULT_KIND:
        parts.insert(0, "operation=" + words(kind)["verb"])
    return hashlib.sha256("\n".join(parts).lower().encode("utf-8")).hexdigest()[:16]


def default_state_path(targets, kind=DEFAULT_KIND):
    return os.path.join(os.path.expanduser("~"), ".ansible", "rolling_reimage",
                        "roll-%s.json" % roll_id(targets, kind))


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


def role_operation_history(client, service, since, kind=DEFAULT_KIND):
    """The latest ``kind`` operation of each role instance of ``service`` started since ``since`` (epoch),
    as {(deployment name lower, instance lower): operation}; every request id is checked before use."""
    latest = {}
    for op in client.operation_history(service, since):
        if op["kind"] != kind or not op["instance"]:
            continue
        try:
            op["request_id"] = names.check_request_id(op.get("request_id") or "")
        except InputError:
            # Kept, so the planner refuses instead of guessing: it is not an id that may go into a URL. The
            # parser has already dropped such an id (request_id None); the text the service sent names it.
            op["bad_request_id"] = op.get("operation_id") or op.get("request_id") or ""
            op["request_id"] = None
        key = (op["deployment"], op["instance"])
        if key not in latest or op["started"] >= latest[key]["started"]:
            latest[key] = op
    return latest


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
        history = {}
        for service in sorted(services):
            try:
                for (dep, inst), op in role_operation_history(self.client, service, since, self.kind).items():
                    history[(service.lower(), dep, inst)] = op
            except AzureClassicError as err:
                self.problems.append("cannot read the operation history of cloud service %s, which decides what an "
                                     "earlier run of this roll already did: %s" % (service, err.readable()))
        return history

    def _refuse(self):
        problems = [shown(problem) for problem in self.problems]  # they quote the service's statuses and names
        text = problems[0] if len(problems) == 1 else "%d problems:\n- %s" % (len(problems), "\n- ".join(problems))
        raise RolloutError("preflight refused the roll: " + text, code="PreflightFailed")

    def plan(self):
        options = self.options
        previous = None if options["fresh"] else self.state_file.load()
        if previous is not None and (previous.get("roll_id") != options["roll_id"]
                                     or (previous.get("kind") or DEFAULT_KIND) != self.kind):
            previous = None
        window_start = self.window_start = options.get("since") or _now() - options["resume_window"]
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

        history = self._read_history({d["cloud_service"] for d in deployments.values()}, window_start)
        if options["fresh"]:
            # A new roll of the same instances: what ended before counts for nothing, but an operation still
            # running is followed, never sent again.
            history = {k: op for k, op in history.items() if op.get("status") == "InProgress"}
        own_in_flight = self._resume(instances, previous, history)
        self._preflight(deployments, instances, live_by_dep, own_in_flight, window_start)
        if self.problems:
            self._refuse()
        if own_in_flight and not self.check_mode:
            self._settle(deployments, instances, own_in_flight)
        self._batch(deployments, instances)

        state = {"version": STATE_VERSION, "roll_id": options["roll_id"], "kind": self.kind, "status": "running",
                 "started": (previous or {}).get("started") or _now(), "resumed": any(
                     i["resumed"] for i in instances.values()) or bool(own_in_flight),
                 "deployments": deployments, "instances": instances, "hosts": hosts,
                 "options": {k: options[k] for k in ("max_failures", "operation_timeout", "ready_timeout",
                                                     "max_parallel", "poll_interval", "max_requests_per_second")},
                 "rounds": max([len(d["batches"]) for d in deployments.values()] + [0]), "last_round": None}
        if not self.check_mode:
            self.state_file.save(state)
        for note in self.notes:
            self.say(note)
        self.say(describe_plan(state, self.check_mode))
        return state

    def _resume(self, instances, previous, history):
        """Mark what an earlier run of this roll did; returns the keys of instances whose operation an earlier run
        started and whose outcome is not known yet (to be followed, never re-sent)."""
        old = (previous or {}).get("instances", {})
        in_flight = []
        for key, inst in instances.items():
            was = old.get(key) or {}
            if (was.get("start") or 0) < self.window_start:
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
                            start=op["started"] if op else was.get("start"))
                in_flight.append(key)  # done, but it may still be recovering: waited for before the first round
            elif status == "InProgress":
                inst.update(outcome="started", resumed=True, request_id=request_id,
                            start=op["started"] if op else was.get("start"))
                in_flight.append(key)
            # Failed: the service says the operation left the instance as it was, so it is sent again.
        done = [i for i in instances.values() if i["outcome"] == "done"]
        if done:
            self.notes.append("resuming: %d instance(s) already %s by an earlier run of this roll (the "
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

    def _preflight(self, deployments, instances, live_by_dep, own_in_flight, window_start):
        recovering = set(own_in_flight)
        for dep_key, dep in sorted(deployments.items()):
            locked, status = dep.pop("locked"), dep.pop("status") or ""
            ours = [instances[k] for k in own_in_flight if instances[k]["deployment"] == dep_key]
            # Our own operation may hold the lock, and our own recovering instances may keep it transitioning.
            if (locked and not any(i["outcome"] == "started" for i in ours)) or (
                    status.endswith("Transitioning") and not ours):
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
                if status != READY and not self.options["allow_unready"]:
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
            self.say("[%s] following %d %s(s) an earlier run of this roll started: %s" % (
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
            # Still "started" only in check mode, where what an earlier run left in flight is not followed.
            todo = sorted((i for i in instances.values()
                           if i["deployment"] == dep_key and i["outcome"] not in ("done", "started")),
                          key=lambda i: (i["upgrade_domain"], i["role"], i["instance"]))
            batches = []
            for inst in todo:
                if batches and batches[-1]["upgrade_domain"] == inst["upgrade_domain"] and (
                        not self.options["batch_size"] or len(batches[-1]["instances"]) < self.options["batch_size"]):
                    batches[-1]["instances"].append(inst["instance"])
                else:
                    batches.append({"upgrade_domain": inst["upgrade_domain"], "instances": [inst["instance"]]})
                inst["round"] = len(batches) - 1
            entry["batches"] = batches


def plan(client, targets, options, state_file, say, check_mode=False):
    """Preflight the targets against live state, resume what an earlier run of the roll did, and write the
    plan (not in check mode); returns the state."""
    return _Planner(client, targets, options, state_file, say, check_mode).plan()


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


class _DeploymentRunner:
    def __init__(self, client, state, state_file, dep_key, options, say):
        self.client = client
        self.state = state
        self.state_file = state_file
        self.dep_key = dep_key
        self.dep = state["deployments"][dep_key]
        self.options = options
        self.say = say
        self.kind = state.get("kind") or DEFAULT_KIND
        self.words = words(self.kind)

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
            self.dep["stop_reason"] = reason

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

    def _send(self, inst):
        """Send the roll's operation and wait for it; returns True when it Succeeded."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        inst.update(start=_now(), outcome="started", request_id=None)
        # Saved before sending: if this run dies before the answer, the next one asks the service what happened.
        self._save()
        try:
            # The client checks the id the service answered with before it is kept or put into a URL.
            inst["request_id"] = self.client.role_instance_operation(
                self.kind, svc, inst["instance"], deployment_name=name,
                deadline=Deadline(self.options["operation_timeout"]))
        except AzureClassicError as err:
            self._fail(inst, err.readable(), err.code or "Error")
            return False
        self._save()
        return self.follow(inst, accepted_at=_now())

    def wait_ready(self, pending, failed=()):
        """Wait until every instance in ``pending`` reports ReadyRole after its operation ended, and every one in
        ``failed`` (a failed operation within the tolerance) is ReadyRole again: one still down stops the
        deployment, since its next batch would take a second upgrade domain down."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        remaining = {inst["instance"].lower(): inst for inst in pending}
        down = {inst["instance"].lower(): inst for inst in failed}

        def probe():
            return self.client.get_deployment(svc, deployment_name=name)["role_instances"]

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
        self.say("[%s] batch %d/%d, upgrade domain %s: %s %s (roll elapsed %.1fs)" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"], self.words["doing"],
            ", ".join(batch["instances"]), started - roll_started))
        recovering = []
        for inst in instances:
            if self.dep["stopped"]:
                break
            if self._send(inst):
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
        return "skipped" if inst.get("resumed") else "done"
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
            "elapsed": round(state["finished"] - state["started"], 1), "hosts": host_outcomes(state)}


def host_outcomes(state, check_mode=False):
    """What each host of the roll reports: {host: {"outcome", "msg", ...}}."""
    kind = state.get("kind") or DEFAULT_KIND
    w, outcomes = words(kind), host_outcome_names(kind)
    result = {}
    for host, key in sorted(state["hosts"].items()):
        inst = state["instances"].get(key) if key else None
        if inst is None:
            result[host] = {"outcome": "failed", "msg": "the roll could not use this host's instance (see the plan)"}
            continue
        where = "%s/%s (upgrade domain %s)" % (inst["deployment"], inst["instance"], inst["upgrade_domain"])
        record = {"instance": where, "request_id": inst["request_id"], "operation": kind}
        if inst["host"] != host:
            record.update(outcome="duplicate", msg="%s is the same instance as host %s, which reports it" % (
                where, inst["host"]))
        elif inst["outcome"] == "done" and inst.get("resumed"):
            record.update(outcome=outcomes["already"], msg="%s was already %s by an earlier run of this roll "
                          "(operation %s)" % (where, w["done"], inst["request_id"]))
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
    if summary.get("report_path"):
        out.append("report: %s" % summary["report_path"])
    return "\n".join(out)
