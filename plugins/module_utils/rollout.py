# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling reimage engine behind the rolling_reimage role.

A roll is planned once (preflight, batches, resume) and then run round by round: round k runs batch k of
every deployment at the same time, one thread per deployment. Within a deployment, the reimages of a batch
are sent back to back (the deployment's lock lets only one run at a time) and the batch's instances recover
together; the next batch starts when all of them report ReadyRole. Progress is saved in a JSON state file on
the controller after every change, so a later run resumes where this one stopped and never re-sends a
reimage the service already accepted.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import tempfile
import threading
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.client import NOT_RECOVERING
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.errors import (
    InputError, ServiceManagementError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.waiter import Deadline, wait_until

STATE_VERSION = 1
READY = "ReadyRole"


class RolloutError(ServiceManagementError):
    """The roll cannot start (preflight) or its state cannot be used."""


def _now():
    return time.time()


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def target_from_hostvars(host, hostvars):
    """The instance a host stands for, from the variables the inventory plugin sets."""
    missing = [v for v in ("cloud_service", "role_instance") if not hostvars.get(v)]
    if missing or not (hostvars.get("deployment_slot") or hostvars.get("deployment_name")):
        raise InputError("host %s does not name a role instance: it needs cloud_service, role_instance and "
                         "deployment_slot or deployment_name (missing: %s)" % (
                             host, ", ".join(missing + ([] if hostvars.get("deployment_slot") or hostvars.get(
                                 "deployment_name") else ["deployment_slot or deployment_name"]))))
    target = {
        "host": host,
        "cloud_service": names.check_name("cloud_service", hostvars["cloud_service"]),
        "role_instance": names.check_name("role_instance", hostvars["role_instance"]),
        "deployment_name": None, "deployment_slot": None,
        "role_name": hostvars.get("role_name"), "upgrade_domain": hostvars.get("upgrade_domain"),
    }
    if hostvars.get("deployment_name"):
        target["deployment_name"] = names.check_name("deployment_name", hostvars["deployment_name"])
    else:
        target["deployment_slot"] = names.check_slot(hostvars["deployment_slot"])
    return target


def default_state_path(targets):
    digest = hashlib.sha256("\n".join(sorted(
        "%s/%s/%s" % (t["cloud_service"], t["deployment_name"] or t["deployment_slot"], t["role_instance"])
        for t in targets)).lower().encode("utf-8")).hexdigest()[:16]
    return os.path.join(os.path.expanduser("~"), ".ansible", "rolling_reimage", "roll-%s.json" % digest)


class StateFile:
    """The roll's progress on the controller, written atomically (0600) after every change."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def load(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                state = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RolloutError("cannot read the roll's state file %s: %s (remove it, or set "
                               "rolling_reimage_fresh to start a new roll)" % (self.path, exc), code="StateFile") from None
        if state.get("version") != STATE_VERSION:
            return None
        return state

    def save(self, state):
        with self.lock:
            directory = os.path.dirname(self.path) or "."
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".roll-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(state, handle, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise


def _instance_key(dep_key, instance):
    return "%s/%s" % (dep_key, instance.lower())


def plan(client, targets, options, state_file, say):
    """Preflight the targets against live state and write a fresh or resumed plan; returns the state."""
    previous = state_file.load()
    resume = previous is not None and previous.get("status") != "complete" and not options["fresh"]
    by_address = {}
    for target in targets:
        address = (target["cloud_service"].lower(), target["deployment_slot"], (target["deployment_name"] or "").lower())
        by_address.setdefault(address, []).append(target)

    def read(address):
        sample = by_address[address][0]
        try:
            deployment = client.get_deployment(sample["cloud_service"], sample["deployment_slot"],
                                               sample["deployment_name"])
            return address, deployment
        except ServiceManagementError as err:
            where = sample["deployment_name"] or "the %s slot" % sample["deployment_slot"]
            raise RolloutError("preflight: cannot read %s of cloud service %s: %s" % (
                where, sample["cloud_service"], err.readable()), code=err.code, http_status=err.http_status,
                request_id=err.request_id) from None

    deployments = {}
    state_instances = {}
    problems = []
    for address, deployment in map(read, sorted(by_address)):
        service = by_address[address][0]["cloud_service"]
        dep_key = "%s/%s" % (service, deployment["name"])
        entry = deployments.setdefault(dep_key, {
            "cloud_service": service, "deployment_name": deployment["name"], "slot": deployment["slot"],
            "stopped": False, "stop_reason": None, "batches": [], "failures": 0})
        live = {i["instance_name"].lower(): i for i in deployment["role_instances"]}
        if deployment["locked"] or (deployment["status"] or "").endswith("Transitioning"):
            problems.append("%s is busy (status %s%s): another operation is running on it" % (
                dep_key, deployment["status"], ", locked" if deployment["locked"] else ""))
        unready = sorted(i["instance_name"] for i in deployment["role_instances"] if i["instance_status"] != READY)
        if unready and not options["allow_unready"]:
            problems.append("%s has instances that are not ReadyRole (%s): a roll now would cut availability further "
                            "(set rolling_reimage_allow_unready to roll anyway)" % (dep_key, ", ".join(unready)))
        for target in by_address[address]:
            inst = live.get(target["role_instance"].lower())
            if inst is None:
                problems.append("host %s: role instance %s does not exist in %s" % (
                    target["host"], target["role_instance"], dep_key))
                continue
            key = _instance_key(dep_key, inst["instance_name"])
            if key in state_instances:
                continue  # two hosts naming one instance: reimage it once
            state_instances[key] = {
                "host": target["host"], "deployment": dep_key, "cloud_service": service,
                "deployment_name": deployment["name"], "instance": inst["instance_name"],
                "role": inst["role_name"], "upgrade_domain": inst["upgrade_domain"],
                "outcome": "pending", "request_id": None, "start": None, "end": None, "error": None}
    if problems:
        raise RolloutError("preflight refused the roll:\n- " + "\n- ".join(problems), code="PreflightFailed")

    if resume:
        if set(previous["instances"]) != set(state_instances):
            raise RolloutError("the state file %s belongs to a roll of other instances; set rolling_reimage_fresh to "
                               "start a new roll or rolling_reimage_state_path to keep both" % state_file.path,
                               code="StateFile")
        for key, old in previous["instances"].items():
            if old["outcome"] == "done":
                state_instances[key].update(old, outcome="done", resumed=True)
            elif old["outcome"] == "started" and old.get("request_id"):
                state_instances[key].update(request_id=old["request_id"], outcome="started")

    for dep_key, entry in deployments.items():
        todo = sorted((i for i in state_instances.values() if i["deployment"] == dep_key and i["outcome"] != "done"),
                      key=lambda i: (i["upgrade_domain"], i["role"], i["instance"]))
        batches = []
        for inst in todo:
            if batches and batches[-1]["upgrade_domain"] == inst["upgrade_domain"] and (
                    not options["batch_size"] or len(batches[-1]["instances"]) < options["batch_size"]):
                batches[-1]["instances"].append(inst["instance"])
            else:
                batches.append({"upgrade_domain": inst["upgrade_domain"], "instances": [inst["instance"]]})
        entry["batches"] = batches

    state = {"version": STATE_VERSION, "status": "running", "started": _now(), "resumed": bool(resume),
             "deployments": deployments, "instances": state_instances,
             "rounds": max([len(d["batches"]) for d in deployments.values()] + [0])}
    state_file.save(state)
    skipped = sum(1 for i in state_instances.values() if i.get("resumed"))
    say("rolling reimage: %d instance(s) in %d deployment(s), %d round(s)%s" % (
        len(state_instances), len(deployments), state["rounds"],
        "; resuming, %d already reimaged in this roll" % skipped if resume else ""))
    return state


class _DeploymentRunner:
    def __init__(self, client, state, state_file, dep_key, options, say):
        self.client = client
        self.state = state
        self.state_file = state_file
        self.dep_key = dep_key
        self.dep = state["deployments"][dep_key]
        self.options = options
        self.say = say

    def _save(self):
        self.state_file.save(self.state)

    def _fail(self, inst, message, code):
        inst.update(outcome="failed", end=_now(), error={"code": code, "message": message})
        self.dep["failures"] += 1
        if self.dep["failures"] > self.options["max_failures"]:
            self.dep["stopped"] = True
            self.dep["stop_reason"] = "%s: %s" % (inst["instance"], message)

    def _reimage(self, inst):
        """Send (or adopt) the reimage and wait for its operation; returns True when it Succeeded."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        adopted = inst["outcome"] == "started" and bool(inst["request_id"])
        try:
            if adopted:
                request_id = inst["request_id"]  # accepted in an earlier run: follow it, never re-send
            else:
                inst.update(start=_now(), outcome="started")
                request_id = self.client.role_instance_operation(
                    "reimage", svc, inst["instance"], deployment_name=name,
                    deadline=Deadline(self.options["operation_timeout"]))
                inst["request_id"] = request_id
                self._save()
            operation = self.client.wait_for_operation(request_id, Deadline(self.options["operation_timeout"]),
                                                       probe_first=adopted)
        except WaitTimeoutError as err:
            self._fail(inst, "the operation did not end within %ss" % self.options["operation_timeout"], "Timeout")
            inst["error"]["request_id"] = err.request_id
            return False
        except ServiceManagementError as err:
            self._fail(inst, err.readable(), err.code or "Error")
            return False
        if operation["status"] != "Succeeded":
            error = operation["error"] or {}
            self._fail(inst, error.get("message") or "the operation failed", error.get("code") or "OperationFailed")
            return False
        inst["operation_end"] = _now()
        return True

    def _wait_ready(self, pending):
        """Wait until every instance in ``pending`` reports ReadyRole after its operation ended."""
        svc, name = self.dep["cloud_service"], self.dep["deployment_name"]
        remaining = {inst["instance"].lower(): inst for inst in pending}

        def probe():
            return self.client.get_deployment(svc, deployment_name=name)["role_instances"]

        def settled(instances):
            now = _now()
            for live in instances:
                inst = remaining.get(live["instance_name"].lower())
                if inst is None:
                    continue
                if live["instance_status"] == READY:
                    inst.update(outcome="done", end=now)
                    del remaining[live["instance_name"].lower()]
                elif live["instance_status"] in NOT_RECOVERING:
                    self._fail(inst, "the instance is %s and will not recover by itself" % live["instance_status"],
                               "InstanceNotReady")
                    del remaining[live["instance_name"].lower()]
            return not remaining

        try:
            wait_until(probe, settled, Deadline(self.options["ready_timeout"]), self.client.sleep, None,
                       self.client.poll_min_interval, self.client.poll_growth)
        except ServiceManagementError as err:
            for inst in list(remaining.values()):
                self._fail(inst, "could not read the instance's status: %s" % err.readable(), err.code or "Error")
            return
        for inst in remaining.values():
            self._fail(inst, "not ReadyRole within %ss of its reimage" % self.options["ready_timeout"], "ReadyTimeout")

    def run_batch(self, index, roll_started):
        batch = self.dep["batches"][index]
        instances = [self.state["instances"][_instance_key(self.dep_key, n)] for n in batch["instances"]]
        started = _now()
        self.say("[%s] batch %d/%d, upgrade domain %s: reimaging %s (roll elapsed %.1fs)" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"],
            ", ".join(batch["instances"]), started - roll_started))
        recovering = []
        for inst in instances:
            if self.dep["stopped"]:
                break
            if self._reimage(inst):
                recovering.append(inst)
            self._save()
        if recovering:
            self._wait_ready(recovering)
        self._save()
        done = sum(1 for i in instances if i["outcome"] == "done")
        failed = sum(1 for i in instances if i["outcome"] == "failed")
        self.say("[%s] batch %d/%d, upgrade domain %s: %s in %.1fs, %d reimaged, %d failed (roll elapsed %.1fs)%s" % (
            self.dep_key, index + 1, len(self.dep["batches"]), batch["upgrade_domain"],
            "stopped" if self.dep["stopped"] else "done", _now() - started, done, failed, _now() - roll_started,
            ": " + self.dep["stop_reason"] if self.dep["stopped"] else ""))


def run_round(client_factory, state, state_file, index, options, say):
    """Run batch ``index`` of every deployment that is not stopped, deployments in parallel."""
    runners = []
    for dep_key, dep in sorted(state["deployments"].items()):
        if dep["stopped"] or index >= len(dep["batches"]):
            continue
        runners.append(dep_key)
    if not runners:
        return 0
    roll_started = state.get("started") or _now()

    def work(dep_key):
        client = client_factory()
        try:
            _DeploymentRunner(client, state, state_file, dep_key, options, say).run_batch(index, roll_started)
        finally:
            client.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(runners), options["max_parallel"])) as pool:
        for future in [pool.submit(work, dep_key) for dep_key in runners]:
            future.result()
    return len(runners)


def stop_all(state, state_file, reason):
    for dep in state["deployments"].values():
        if not dep["stopped"]:
            dep["stopped"] = True
            dep["stop_reason"] = reason
    state_file.save(state)


def summarize(state, state_file):
    """Close the roll: mark untouched instances, compute the outcome, return the summary."""
    rows = []
    counts = {"done": 0, "failed": 0, "untouched": 0, "skipped": 0}

    def order(key):
        inst = state["instances"][key]
        return inst["deployment"], inst["upgrade_domain"], key

    for key in sorted(state["instances"], key=order):
        inst = state["instances"][key]
        outcome = inst["outcome"]
        if outcome == "done" and inst.get("resumed"):
            outcome = "skipped"
        elif outcome in ("pending", "started"):
            outcome = "untouched" if outcome == "pending" else "failed"
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
    return {"status": state["status"], "counts": counts,
            "stopped_deployments": stopped, "instances": rows, "state_path": state_file.path,
            "elapsed": round(state["finished"] - state["started"], 1)}


def format_table(summary):
    header = ("instance", "UD", "request id", "start", "end", "outcome")
    lines = [(r["deployment"] + "/" + r["instance"], str(r["upgrade_domain"]), r["request_id"] or "-",
              (r["start"] or "-")[11:19] or "-", (r["end"] or "-")[11:19] or "-",
              r["outcome"] + (" (%s)" % r["error"] if r["error"] else "")) for r in summary["instances"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    c = summary["counts"]
    out.append("rolling reimage %s in %.1fs: %d reimaged, %d failed, %d untouched, %d skipped (done earlier)" % (
        summary["status"], summary["elapsed"], c["done"], c["failed"], c["untouched"], c["skipped"]))
    return "\n".join(out)
