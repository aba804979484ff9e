"""role_instance_reboot and role_instance_rebuild through real ansible runs, judged from the emulator's log."""
import re
import subprocess

import pytest

from tests.helpers import bin_path, run_adhoc, run_playbook

BASE = {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"}
# What each module must send, and nothing else: comp and the other query parameters.
SENT = {"reboot": "comp=reboot", "rebuild": "comp=rebuild&resources=allLocalDrives"}


def role_operation_posts(emulator):
    return [e for e in emulator.requests_made("POST") if "comp=" in (e["query"] or "")]


@pytest.mark.parametrize("kind", ["reboot", "rebuild"])
def test_sends_exactly_one_operation_of_its_kind_and_waits_for_ready(emulator, kind):
    rc, result, out = run_adhoc(emulator, "role_instance_" + kind, dict(BASE, wait_for_ready=True))
    assert rc == 0, out
    posts = role_operation_posts(emulator)
    assert [(p["query"], p["status"]) for p in posts] == [(SENT[kind], 202)], posts
    assert posts[0]["path"].endswith("/deploymentslots/production/roleinstances/WebRole1_IN_0")
    assert result["changed"] is True and result["status"] == "Succeeded" and result["http_status_code"] == 200
    assert result["request_id"] == posts[0]["request_id"] and re.fullmatch(r"[0-9a-f]{32}", result["request_id"])
    assert result["instance_status"] == "ReadyRole"
    assert (result["deployment_name"], result["deployment_slot"]) == ("contoso-web-prod", "production")
    statuses = [e["status"] for e in emulator.events("instance_status") if e["instance"] == "WebRole1_IN_0"]
    assert statuses[0] == "StoppingRole" and statuses[-1] == "ReadyRole"
    other = {"reboot", "rebuild", "reimage"} - {kind}
    assert not any(emulator.accepted(k) for k in other)


@pytest.mark.parametrize("kind", ["reboot", "rebuild"])
def test_check_mode_reads_the_address_and_sends_nothing(emulator, kind):
    rc, result, out = run_adhoc(emulator, "role_instance_" + kind, BASE, extra=("--check",))
    assert rc == 0, out
    assert result["changed"] is True and result["request_id"] is None
    assert emulator.requests_made("POST") == [] and emulator.requests_made("GET")
    rc, result, out = run_adhoc(emulator, "role_instance_" + kind, dict(BASE, role_instance="WebRole1_IN_9"),
                                extra=("--check",))
    assert rc != 0 and "role instance WebRole1_IN_9 does not exist" in out
    assert emulator.requests_made("POST") == []


def test_lost_answer_to_a_reboot_is_adopted_not_sent_twice(emulator):
    emulator.fault(method="POST", path="comp=reboot", action={"drop": "after"})
    rc, result, out = run_adhoc(emulator, "role_instance_reboot", BASE)
    assert rc == 0, out
    accepted = emulator.accepted("reboot")
    assert len(accepted) == 1 and accepted[0]["request_id"] == result["request_id"]
    assert "the answer to the reboot request for WebRole1_IN_0 was lost" in out


def test_failed_rebuild_fails_the_task_with_the_services_error(emulator):
    emulator.fault(method="POST", path="comp=rebuild", action={
        "fail_operation": {"code": "InternalError", "message": "The local drives could not be initialized."}})
    rc, result, out = run_adhoc(emulator, "role_instance_rebuild", BASE)
    assert rc != 0
    assert result["status"] == "Failed" and result["error"]["code"] == "InternalError"
    assert "rebuild of WebRole1_IN_0 failed: The local drives could not be initialized" in result["msg"]
    assert len(emulator.accepted("rebuild")) == 1


def test_both_modules_in_a_playbook_with_group_module_defaults_and_no_wait(emulator, tmp_path):
    play = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/azure_classic.cloud_services.cloud_services:
%s    azure_classic.cloud_services.role_instance_rebuild:
      cloud_service: contoso-web
  tasks:
    - name: Reboot without waiting
      azure_classic.cloud_services.role_instance_reboot:
        cloud_service: contoso-web
        deployment_name: contoso-web-staging
        role_instance: WorkerRole1_IN_1
        wait: false
      register: reboot
    - name: Follow it
      azure_classic.cloud_services.operation_status:
        request_id: "{{ reboot.request_id }}"
        wait: true
    - name: Rebuild another instance
      azure_classic.cloud_services.role_instance_rebuild:
        deployment_slot: staging
        role_instance: WebRole1_IN_2
      register: rebuild
    - name: Show both
      ansible.builtin.debug:
        msg: "reboot {{ reboot.status }} {{ reboot.deployment_name }}; rebuild {{ rebuild.status }}"
""" % emulator.group_defaults(6)
    no_environment = {"AZURE_SUBSCRIPTION_ID": None, "AZURE_CERT_PATH": None, "AZURE_MANAGEMENT_URL": None, "AZURE_CA_PATH": None}
    proc = run_playbook(emulator, play, tmp_path, env=no_environment)
    assert proc.returncode == 0, proc.output
    assert "reboot InProgress contoso-web-staging; rebuild Succeeded" in proc.output
    posts = role_operation_posts(emulator)
    assert [(p["path"].rsplit("/", 1)[-1], p["query"]) for p in posts] == [
        ("WorkerRole1_IN_1", SENT["reboot"]), ("WebRole1_IN_2", SENT["rebuild"])]


def test_ansible_doc_finds_the_modules_and_rolling_reboot(emulator):
    env = emulator.env()
    for module, words in (("role_instance_reboot", "Reboot Role Instance"),
                          ("role_instance_rebuild", "allLocalDrives")):
        proc = subprocess.run([bin_path("ansible-doc"), "azure_classic.cloud_services." + module], env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0 and words in proc.stdout and "wait_for_ready" in proc.stdout, proc.stderr
    proc = subprocess.run([bin_path("ansible-doc"), "-t", "role", "azure_classic.cloud_services.rolling_reimage"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    text = " ".join(proc.stdout.split())
    assert proc.returncode == 0 and "rolling reboot" in text.lower() and "rolling_reimage_operation" in text, proc.stderr
    assert "rolling_reimage_report_path" in text
