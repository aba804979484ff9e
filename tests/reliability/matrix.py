"""The fault matrix: every fault the emulator injects against every entry point, through real ansible runs.

Each cell arms one fault, runs one entry point, and classifies what happened:
  recovered  the run succeeded and the state is right (every target reimaged exactly once, data complete);
  failed     the run failed with a clear message (no traceback) and the state is right: nothing doubled, no
             accepted operation left without its request id, availability bound kept;
  wrong      anything else: a doubled or lost operation, a hidden failure, a broken bound, a traceback.
A cell is correct when its outcome is not "wrong" and matches what that fault must produce (a failed
operation must fail the task; transport faults must be recovered).
"""
import collections
import json
import pathlib
import subprocess
import time

import requests
import yaml

from tests.helpers import bin_path

FAULTS = ("500", "503", "409 foreign", "307", "drop before", "drop after", "delay > timeout", "operation Failed",
          "never ReadyRole")
ENTRIES = ("role_instance_reimage", "operation_status", "deployment_info", "role_instances", "rolling_reimage")
TRANSPORT = ("500", "503", "307", "drop before", "drop after", "delay > timeout")

# What each cell must produce; anything else is wrong.
EXPECTED = {}
for _fault in FAULTS:
    for _entry in ENTRIES:
        EXPECTED[(_fault, _entry)] = "recovered"
EXPECTED[("operation Failed", "role_instance_reimage")] = "failed"
EXPECTED[("operation Failed", "operation_status")] = "failed"
EXPECTED[("operation Failed", "rolling_reimage")] = "failed"
EXPECTED[("never ReadyRole", "role_instance_reimage")] = "failed"
EXPECTED[("never ReadyRole", "rolling_reimage")] = "failed"
# Someone else's reboot of an instance of upgrade domain 2 holds the lock when the role starts: the plan names it,
# and each batch of another upgrade domain waits until that instance is ReadyRole again (recovered, one domain down).

ROLE_TARGETS = ("WebRole1_IN_0", "WorkerRole1_IN_0", "WebRole1_IN_1", "WorkerRole1_IN_1")
API_HEADERS = {"x-ms-version": "2014-10-01", "Content-Length": "0"}


def _post(emu, instance, comp="reimage", slot="production"):
    response = requests.post("%s/%s/services/hostedservices/contoso-web/deploymentslots/%s/roleinstances/%s?comp=%s"
                             % (emu.url, emu.subscription_id, slot, instance, comp),
                             cert=emu.info["certificate_path"], verify=emu.info["ca_path"], headers=API_HEADERS,
                             timeout=10)
    assert response.status_code == 202, response.text
    return response.headers["x-ms-request-id"]


def arm(emu, fault, entry):
    """Put the emulator in the state the cell needs; returns facts the classifier uses."""
    facts = {}
    mutating = entry in ("role_instance_reimage", "rolling_reimage")
    if entry == "operation_status" and fault not in ("409 foreign", "operation Failed", "never ReadyRole"):
        facts["foreign"] = _post(emu, "WebRole1_IN_1")  # the operation to follow, started before the fault
    if fault in ("500", "503"):
        emu.fault(path=".", times=2, action={"status": int(fault)})
    elif fault == "307":
        emu.fault(path=".", times=2, action={"redirect": True})
    elif fault == "drop before":
        emu.fault(path="comp=reimage" if mutating else ".", times=1, action={"drop": "before"})
    elif fault == "drop after":
        emu.fault(path="comp=reimage" if mutating else ".", times=1, action={"drop": "after"})
    elif fault == "delay > timeout":
        emu.fault(path="comp=reimage" if mutating else ".", times=1, action={"delay": 2.5})
        facts["timeout"] = 1
    elif fault == "409 foreign":
        emu.timing(operation_seconds=4, recovery_seconds=0.5)
        facts["foreign"] = _post(emu, "WorkerRole1_IN_2", comp="reboot")
    elif fault in ("operation Failed", "never ReadyRole"):
        action = ({"fail_operation": {"code": "InternalError", "message": "The host could not apply the image."}}
                  if fault == "operation Failed" else {"stuck": True})
        if mutating:
            emu.fault(method="POST", path="WebRole1_IN_0", times=1, action=action)
        else:
            emu.fault(method="POST", path="comp=reimage", times=1, action=action)
            facts["foreign"] = _post(emu, "WebRole1_IN_0")
            time.sleep(1.5)  # the operation has ended (Failed or Succeeded) before the reader runs
    return facts


def _run(cmd, env, timeout=240):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _adhoc(emu, module, args, facts):
    if facts.get("timeout"):
        args = dict(args, timeout=facts["timeout"])
    return _run([bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services." + module, "-a",
                 json.dumps(args)], emu.env())


def run_entry(emu, entry, facts, tmp_path):
    tmp_path = pathlib.Path(tmp_path)
    if entry == "role_instance_reimage":
        return _adhoc(emu, entry, {"cloud_service": "contoso-web", "deployment_slot": "production",
                                   "role_instance": "WebRole1_IN_0", "wait_for_ready": True, "ready_timeout": 5,
                                   "wait_timeout": 60}, facts)
    if entry == "operation_status":
        return _adhoc(emu, entry, {"request_id": facts["foreign"], "wait": True, "wait_timeout": 60}, facts)
    if entry == "deployment_info":
        return _adhoc(emu, entry, {"cloud_service": "contoso-web", "deployment_slot": "production"}, facts)
    if entry == "role_instances":
        config = tmp_path / "matrix.role_instances.yml"
        options = {"plugin": "azure_classic.cloud_services.role_instances", "strict": True}
        if facts.get("timeout"):
            options["timeout"] = facts["timeout"]
        config.write_text(yaml.safe_dump(options))
        return _run([bin_path("ansible-inventory"), "-i", str(config), "--list"],
                    emu.env(ANSIBLE_INVENTORY_UNPARSED_FAILED="true"))
    hosts = {"contoso-web.production." + name: {"cloud_service": "contoso-web", "deployment_slot": "production",
                                                "role_instance": name} for name in ROLE_TARGETS}
    inventory = tmp_path / "matrix-inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    role_vars = {"rolling_reimage_state_path": str(tmp_path / "matrix-roll.json"), "rolling_reimage_fresh": True,
                 "rolling_reimage_ready_timeout": 5}
    if facts.get("timeout"):
        role_vars["rolling_reimage_connection"] = {"timeout": facts["timeout"]}
    playbook = tmp_path / "matrix-roll.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "gather_facts": False, "roles": [
        {"role": "azure_classic.cloud_services.rolling_reimage", "vars": role_vars}]}]))
    return _run([bin_path("ansible-playbook"), "-i", str(inventory), str(playbook)], emu.env())


def _result(output):
    marker = output.find("=> {")
    if marker < 0:
        return {}
    try:
        return json.JSONDecoder().raw_decode(output[marker + 3:])[0]
    except ValueError:
        return {}


def classify(emu, fault, entry, facts, rc, output):
    """(outcome, reason) for one cell, from the run's output and the emulator's event log."""
    if "Traceback (most recent call last)" in output or "MODULE FAILURE" in output:
        return "wrong", "a traceback reached the user"
    accepted = collections.Counter(e["path"].rsplit("/", 1)[-1] for e in emu.accepted())
    foreign = facts.get("foreign")
    ours = dict(accepted)
    if foreign:
        for e in emu.accepted():
            if e["request_id"] == foreign:
                ours[e["path"].rsplit("/", 1)[-1]] -= 1
    doubled = sorted(name for name, count in ours.items() if count > 1)
    if doubled:
        return "wrong", "reimaged twice: %s" % ", ".join(doubled)
    availability = emu.availability()["contoso-web/contoso-web-prod"]
    if entry == "rolling_reimage" and availability["max_unavailable_upgrade_domains"] > (2 if foreign else 1):
        return "wrong", "availability bound broken: %s" % availability
    result = _result(output)
    if rc != 0:
        if entry == "role_instance_reimage" and ours.get("WebRole1_IN_0") and not result.get("request_id"):
            return "wrong", "an accepted operation was not reported (no request_id)"
        message = result.get("msg") or output.strip().splitlines()[-1] if output.strip() else ""
        if not message:
            return "wrong", "failed without a message"
        return "failed", _first_line(result.get("msg") or _failure_line(output))
    # Success: is the state right?
    if entry == "role_instance_reimage":
        if ours.get("WebRole1_IN_0") != 1 or result.get("status") != "Succeeded":
            return "wrong", "success reported but %d reimage(s) accepted, status %s" % (
                ours.get("WebRole1_IN_0", 0), result.get("status"))
        return "recovered", "one reimage, request id %s" % result.get("request_id", "?")[:8]
    if entry == "operation_status":
        return "recovered", "status %s" % result.get("status")
    if entry == "deployment_info":
        if len(result.get("role_instances", [])) != 6:
            return "wrong", "incomplete deployment"
        return "recovered", "6 instances read"
    if entry == "role_instances":
        hosts = output.count('"cloud_service"')
        if hosts != 12:
            return "wrong", "%d hosts instead of 12" % hosts
        return "recovered", "12 hosts"
    missing = [t for t in ROLE_TARGETS if ours.get(t) != 1]
    if missing:
        return "wrong", "success reported but not reimaged exactly once: %s" % ", ".join(missing)
    return "recovered", "4 reimaged once, at most 1 upgrade domain down"


def _failure_line(output):
    for line in output.splitlines():
        if "msg" in line or "FAILED" in line or "refused" in line or "ERROR" in line:
            return line.strip()
    return output.strip().splitlines()[-1] if output.strip() else ""


def _first_line(text):
    text = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return text if len(text) <= 140 else text[:137] + "..."


def run_cell(emu, fault, entry, tmp_path):
    emu.reset()
    emu.timing(operation_seconds=0.5, recovery_seconds=0.5)
    facts = arm(emu, fault, entry)
    rc, output = run_entry(emu, entry, facts, tmp_path)
    outcome, reason = classify(emu, fault, entry, facts, rc, output)
    correct = outcome != "wrong" and outcome == EXPECTED[(fault, entry)]
    return {"fault": fault, "entry": entry, "outcome": outcome, "reason": reason, "correct": correct,
            "expected": EXPECTED[(fault, entry)], "output": output}
