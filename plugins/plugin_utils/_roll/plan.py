# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Planning a roll: preflight against the deployments' live state, resume from the service's history (settling what
an earlier run left in flight), the batches, and the plan as the operator reads it; also rebuilding a roll's
outcomes from the service when its state file is gone."""

from __future__ import annotations

import math

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError, shown
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._role_instance_operations import not_found_context
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import NOT_RECOVERING, READY
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import checkpoints
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.history import (
    checked_history, describe_operation, ended_after, in_progress_holder, latest_operations)
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.identity import instance_key, roll_id
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.kinds import DEFAULT_KIND, words
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.runner import DEFAULT_AVAILABILITY_TIMEOUT, DeploymentRunner
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import STATE_VERSION, RolloutError, iso, now


# Get Operation Status does not know the operation (a record from another service, or from an emulator since reset).
UNKNOWN = "Unknown"


def options_has_checkpoints(options):
    return bool(options.get("checkpoints"))


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
            # "No deployments were found" is all the service says: one more read tells which part is missing.
            not_found_context(err, self.client, sample["cloud_service"], sample["deployment_slot"],
                              sample["deployment_name"])
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
                key = instance_key(dep_key, inst["instance_name"])
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
                "started": roll.get("started") or now(), "run_id": roll.get("run_id"), "resumed": False, "rebuilt": True,
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
        window_start = options.get("since") or service_now - options["resume_window"]
        paused = (previous or {}).get("counts_since") if (previous or {}).get("status") == "paused" else None
        if paused and not options.get("since") and paused < window_start:
            # A roll paused at a checkpoint continues from its own start however long the pause lasted (an approval
            # may take days): past the window, its canary would otherwise count as never done.
            window_start = paused
            self.notes.append("continuing the roll paused at a checkpoint (its state file %s): operations since %s "
                              "count as done; to start a new roll instead, set rolling_reimage_fresh or "
                              "rolling_reimage_since" % (self.state_file.path, iso(paused)))
        self.window_start = window_start
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
        options["rebake"] = self._unpassed_checkpoint(previous)
        cuts = checkpoints.cut(deployments, instances, options)

        started = now()
        state = {"version": STATE_VERSION, "roll_id": options["roll_id"], "kind": self.kind, "status": "running",
                 # This run's own id, start and settings; the roll's first run started at roll_started.
                 "run_id": options.get("run_id"), "run": options.get("run") or {}, "started": started,
                 "health_checks": list(options.get("health_checks") or ()),
                 "roll_started": (previous or {}).get("roll_started") or (previous or {}).get("started") or started,
                 "resumed": any(
                     i["resumed"] for i in instances.values()) or bool(own_in_flight),
                 # On the service's clock: from when an operation of the roll's kind on a target, by anyone, counts
                 # as done for this roll (a fresh roll counts from now).
                 "window_start": window_start, "service_started": service_now,
                 "clock_offset": self.client.clock_offset or 0.0,
                 "counts_since": service_now if options["fresh"] else window_start,
                 "deployments": deployments, "instances": instances, "hosts": hosts,
                 "options": dict({k: options[k] for k in ("max_failures", "operation_timeout", "ready_timeout",
                                                          "max_parallel", "poll_interval", "max_requests_per_second")},
                                 availability_timeout=options.get("availability_timeout",
                                                                  DEFAULT_AVAILABILITY_TIMEOUT)),
                 "rounds": checkpoints.rounds_of(deployments), "last_round": None, "checkpoints": cuts}
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
            # The service decides what counts as done: this controller's record only says which operations were ours.
            ours = was.get("request_id")
            if was.get("outcome") == "done" and (op is None or op["request_id"] == ours):
                status = "Succeeded" if op is not None else self._status_of(ours, may_be_unknown=True)
                if status == "Succeeded":
                    inst.update(outcome="done", resumed=True, request_id=ours, start=was.get("start"),
                                end=was.get("end"), sent_by_roll=True)
                    continue
                if status is None:
                    continue  # the service could not be asked: a problem was recorded, the roll is refused
                if status == UNKNOWN:
                    self.notes.append(
                        "%s/%s: this controller's record of the roll (%s) says it was %s by operation %s at %s, but "
                        "the service knows no such operation (its history since %s does not list it, and Get "
                        "Operation Status does not find it): that record is not this service's, so it is %s again" % (
                            inst["deployment"], inst["instance"], self.state_file.path, self.words["done"], ours,
                            iso(was.get("start")), iso(self.window_start), self.words["done"]))
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
            inst["sent_by_roll"] = request_id == ours
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
                                  len(done), self.words["done"], iso(self.window_start)))
        return in_flight

    def _unpassed_checkpoint(self, previous):
        """The checkpoint whose bake the previous run of this roll did not pass (its health gate failed, or the run was
        cut short while baking), or None. The roll stays paused there, sending nothing, until it runs again: a
        relaunch never goes past a checkpoint without a passed bake and a new go-ahead."""
        if not previous or previous.get("status") == "paused" or not options_has_checkpoints(self.options):
            return None
        bakes = ((previous.get("checkpoints") or {}).get("bakes")) or []
        if not bakes or bakes[-1].get("outcome") not in ("unhealthy", "baking"):
            return None
        number = bakes[-1].get("checkpoint")
        self.notes.append("the previous run of this roll did not pass checkpoint %s (%s): the roll stays paused there "
                          "and sends nothing; run it again to go on once the instances done so far are healthy" % (
                              number, "its health gate failed during the bake" if bakes[-1].get("outcome") ==
                              "unhealthy" else "it stopped while baking"))
        return number

    def _status_of(self, request_id, may_be_unknown=False):
        """The operation's status from Get Operation Status; UNKNOWN (with ``may_be_unknown``) when the service does
        not know the id; None, with a problem recorded, when it cannot be read."""
        try:
            return self.client.get_operation(request_id)["status"]
        except AzureClassicError as err:
            if may_be_unknown and getattr(err, "http_status", None) == 404 and err.code == "ResourceNotFound":
                return UNKNOWN
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
                    holder = in_progress_holder(self.client, dep["cloud_service"], dep["deployment_name"],
                                                window_start)
                    why = "another operation holds its lock (%s)" % (
                        "operation " + holder if holder else "the operation history does not name it")
                else:
                    why = "the service is changing it"
                self.problems.append("%s is busy (status %s%s): %s; wait for it to end" % (
                    dep_key, status, ", locked" if locked else "", why))
            for live in sorted(live_by_dep[dep_key].values(), key=lambda i: i["instance_name"]):
                key = instance_key(dep_key, live["instance_name"])
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
                        op.get("status") == "InProgress" or (op.get("status") == "Succeeded" and ended_after(op, recent))):
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
            runner = DeploymentRunner(self.client, {"deployments": deployments, "instances": instances,
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
        before, after = checkpoints.plan_lines(state, index)
        lines += before
        lines.append("round %d:" % (index + 1))
        for dep_key, dep in sorted(state["deployments"].items()):
            position = checkpoints.batch_position(dep, index)
            if position is not None:
                batch = dep["batches"][position]
                lines.append("  %s upgrade domain %s: %s" % (
                    dep_key, batch["upgrade_domain"], ", ".join(batch["instances"])))
        lines += after
    lines += checkpoints.waiting_lines(state)
    lines += _describe_done(state, w)
    return "\n".join(lines)


# The plan names at most this many instances that count as done (the state file and the report list them all).
SHOW_DONE = 20


def _describe_done(state, w):
    """Which instances count as done, and why: the operation the service's history shows, when it started, and whether
    this roll's record sent it; and how to start a new roll that counts none of them."""
    done = sorted((i for i in state["instances"].values() if i["outcome"] == "done"),
                  key=lambda i: (i["deployment"], i["instance"]))
    if not done:
        return []
    since = iso(math.ceil(state.get("service_started") or now()))
    lines = ["%d instance(s) count as already %s and are not sent again: the service's operation history since %s "
             "shows each (to %s them again, start a new roll: -e rolling_reimage_since=%s)" % (
                 len(done), w["done"], iso(state.get("window_start")), w["verb"], since)]
    for inst in done[:SHOW_DONE]:
        lines.append("  %s/%s: operation %s, started %s, %s" % (
            inst["deployment"], inst["instance"], inst.get("request_id") or "(unknown)", iso(inst.get("start")) or "at an unknown time",
            "sent by an earlier run of this roll" if inst.get("sent_by_roll") else
            "not sent by this roll as far as its record shows (another job, an ad hoc task, or a run elsewhere)"))
    if len(done) > SHOW_DONE:
        lines.append("  ... and %d more (the roll's state file and report list them all)" % (len(done) - SHOW_DONE))
    return lines
