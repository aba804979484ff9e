"""role_instance_reimage, operation_status and deployment_info through real ansible runs."""
import re

import pytest
import requests

from tests.helpers import run_adhoc, run_playbook

REIMAGE = "role_instance_reimage"
BASE = {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"}


def _start_foreign_operation(emulator, instance="WorkerRole1_IN_2", slot="production"):
    """A reimage started by someone else, straight through the API."""
    response = requests.post("%s/%s/services/hostedservices/contoso-web/deploymentslots/%s/roleinstances/%s?comp=reimage"
                             % (emulator.url, emulator.subscription_id, slot, instance),
                             cert=emulator.info["certificate_path"], verify=emulator.info["ca_path"],
                             headers={"x-ms-version": "2014-10-01", "Content-Length": "0"}, timeout=10)
    assert response.status_code == 202
    return response.headers["x-ms-request-id"]


def test_reimage_by_slot_waits_and_reports_every_field(emulator):
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc == 0, out
    assert result["changed"] is True and result["status"] == "Succeeded" and result["http_status_code"] == 200
    assert re.fullmatch(r"[0-9a-f]{32}", result["request_id"])
    assert (result["deployment_name"], result["deployment_slot"], result["cloud_service"], result["role_instance"]) == \
        ("contoso-web-prod", "production", "contoso-web", "WebRole1_IN_0")
    accepted = emulator.accepted()
    assert [a["request_id"] for a in accepted] == [result["request_id"]]
    polls = emulator.requests_made("GET")
    assert any(result["request_id"] in p["path"] for p in polls)


def test_reimage_by_name_with_wait_for_ready(emulator):
    args = dict(BASE, deployment_slot=None, deployment_name="contoso-web-prod", role_instance="WorkerRole1_IN_1",
                wait_for_ready=True)
    del args["deployment_slot"]
    rc, result, out = run_adhoc(emulator, REIMAGE, args)
    assert rc == 0, out
    assert result["instance_status"] == "ReadyRole"
    statuses = [e["status"] for e in emulator.events("instance_status") if e["instance"] == "WorkerRole1_IN_1"]
    assert statuses[-1] == "ReadyRole" and "StoppingRole" in statuses
    assert emulator.accepted()[0]["path"].endswith("/deployments/contoso-web-prod/roleinstances/WorkerRole1_IN_1")


def test_no_wait_then_operation_status_in_a_playbook(emulator, tmp_path):
    emulator.timing(operation_seconds=5)
    proc = run_playbook(emulator, """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Start
      azure_classic.cloud_services.role_instance_reimage:
        cloud_service: contoso-web
        deployment_slot: staging
        role_instance: WebRole1_IN_2
        wait: false
      register: started
    - name: Check right away
      azure_classic.cloud_services.operation_status:
        request_id: "{{ started.request_id }}"
      register: early
    - name: Wait
      azure_classic.cloud_services.operation_status:
        request_id: "{{ started.request_id | upper }}"
        wait: true
        wait_timeout: 60
      register: final
    - name: Verify
      ansible.builtin.assert:
        that:
          - started.changed and started.status == 'InProgress'
          - started.deployment_slot == 'staging' and started.deployment_name is none
          - early.status == 'InProgress' and not early.done and not early.changed
          - final.status == 'Succeeded' and final.done and final.succeeded and final.http_status_code == 200
          - final.request_id == started.request_id
""", tmp_path)
    assert proc.returncode == 0, proc.output


def test_no_wait_sends_one_request_like_a_hand_made_post(emulator):
    rc, result, out = run_adhoc(emulator, REIMAGE, dict(BASE, wait=False))
    assert rc == 0, out
    made = emulator.requests_made()
    assert [(e["method"], e["status"]) for e in made] == [("POST", 202)]
    assert result["request_id"] == made[0]["request_id"] and result["deployment_slot"] == "production"


def test_check_mode_verifies_the_address_and_sends_no_post(emulator):
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE, extra=["--check"])
    assert rc == 0, out
    assert result["changed"] is True and result["request_id"] is None and result["deployment_name"] == "contoso-web-prod"
    assert emulator.requests_made("POST") == []
    rc, result, out = run_adhoc(emulator, REIMAGE, dict(BASE, role_instance="WebRole1_IN_9"), extra=["--check"])
    assert rc != 0 and "WebRole1_IN_9 does not exist" in result["msg"]
    assert emulator.requests_made("POST") == []


NOWHERE = {"cloud_service": "nowhere", "deployment_slot": "production"}
GONE = {"cloud_service": "contoso-web", "deployment_name": "gone"}


@pytest.mark.parametrize("module,args,expected,reads", [
    # "No deployments were found." does not say whether the deployment or the cloud service is missing: one more
    # read, of the cloud service, says which.
    (REIMAGE, dict(NOWHERE, role_instance="WebRole1_IN_0"), "(cloud service nowhere does not exist in subscription %s)", 1),
    ("deployment_info", NOWHERE, "(cloud service nowhere does not exist in subscription %s)", 1),
    (REIMAGE, dict(BASE, role_instance="WebRole1_IN_7"), "(role instance WebRole1_IN_7 does not exist in the "
     "production deployment of cloud service contoso-web)", 0),
    (REIMAGE, dict(GONE, role_instance="WebRole1_IN_0"),
     "(deployment gone of cloud service contoso-web does not exist (the cloud service does))", 1),
    ("deployment_info", GONE, "(deployment gone of cloud service contoso-web does not exist (the cloud service does))", 1),
], ids=["reimage-no-service", "info-no-service", "reimage-no-instance", "reimage-no-deployment", "info-no-deployment"])
def test_not_found_names_the_missing_part(emulator, module, args, expected, reads):
    rc, result, out = run_adhoc(emulator, module, args)
    assert rc != 0, out
    assert expected.replace("%s", emulator.subscription_id) in result["msg"], out
    assert result["error"]["code"] == "ResourceNotFound" and result["error"]["http_status"] == 404
    assert result["changed"] is False and emulator.accepted() == []
    service_reads = [e for e in emulator.requests_made("GET") if e["path"].endswith("/hostedservices/" + args["cloud_service"])]
    assert len(service_reads) == reads, emulator.requests_made()


def test_empty_slot_is_reported(emulator):
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "contoso-web", "deployments": [{"name": "p", "slot": "production", "roles": [{"name": "WebRole1"}]}]}]})
    rc, result, out = run_adhoc(emulator, "deployment_info", {"cloud_service": "contoso-web", "deployment_slot": "staging"})
    assert rc != 0 and "the staging deployment of cloud service contoso-web does not exist" in result["msg"], out


def test_unregistered_certificate_gets_403(emulator):
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE,
                                env={"AZURE_CERT_PATH": emulator.info["unregistered_certificate_path"]})
    assert rc != 0
    assert result["error"]["code"] == "ForbiddenError" and result["error"]["http_status"] == 403
    assert "management certificate is uploaded to this subscription" in result["msg"]


def test_conflict_from_a_foreign_operation_is_waited_out(emulator):
    # Long enough that the module's POST certainly arrives while the foreign operation holds the lock.
    emulator.timing(operation_seconds=6)
    foreign = _start_foreign_operation(emulator)
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc == 0, out
    posts = emulator.requests_made("POST")
    assert [p["status"] for p in posts] == [202, 409, 202]
    assert result["request_id"] != foreign and result["status"] == "Succeeded"
    assert any(foreign in p["path"] for p in emulator.requests_made("GET")), "it waited on the holder"


def test_conflict_beyond_the_wait_budget_fails_clearly(emulator):
    emulator.timing(operation_seconds=30)
    _start_foreign_operation(emulator)
    rc, result, out = run_adhoc(emulator, REIMAGE, dict(BASE, wait_timeout=2))
    assert rc != 0
    assert result["error"]["code"] == "ConflictError" and "gave up waiting for the deployment's lock" in result["msg"]


def test_redirect_is_followed(emulator):
    emulator.fault(method="POST", path="comp=reimage", action={"redirect": True})
    emulator.fault(method="GET", path="/operations/", action={"redirect": True})
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc == 0, out
    assert [p["status"] for p in emulator.requests_made("POST")] == [307, 202]


def test_throttling_and_internal_errors_are_retried(emulator):
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"status": 503})
    emulator.fault(method="GET", path="/operations/", times=1, action={"status": 500})
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc == 0, out
    assert len(emulator.accepted()) == 1


@pytest.mark.parametrize("zone", ["UTC", "Australia/Sydney", "America/New_York"])
def test_lost_answer_is_recovered_without_a_second_reimage(emulator, zone):
    """Whatever the controller's time zone (summer time included), the service's UTC timestamps match."""
    emulator.fault(method="POST", path="comp=reimage", action={"drop": "after"})
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE, env={"TZ": zone})
    assert rc == 0, out
    accepted = emulator.accepted()
    assert len(accepted) == 1 and accepted[0]["request_id"] == result["request_id"]
    assert "adopted" in out


def test_lost_request_is_sent_again_once(emulator):
    emulator.fault(method="POST", path="comp=reimage", action={"drop": "before"})
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc == 0, out
    assert len(emulator.accepted()) == 1


def test_failed_operation_fails_the_task_with_its_error(emulator):
    emulator.fault(method="POST", path="comp=reimage", action={
        "fail_operation": {"code": "InternalError", "message": "The host could not apply the image."}})
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE)
    assert rc != 0
    assert result["changed"] is True and result["status"] == "Failed" and result["request_id"]
    assert result["error"]["code"] == "InternalError" and "could not apply the image" in result["msg"]
    rc, status, out = run_adhoc(emulator, "operation_status", {"request_id": result["request_id"],
                                                               "fail_on_failed": False})
    assert rc == 0 and status["status"] == "Failed" and status["error"]["code"] == "InternalError", out
    rc, status, out = run_adhoc(emulator, "operation_status", {"request_id": result["request_id"]})
    assert rc != 0 and status["error"]["code"] == "InternalError"


def test_wait_timeout_is_distinct_from_failure(emulator):
    emulator.timing(operation_seconds=30)
    rc, result, out = run_adhoc(emulator, REIMAGE, dict(BASE, wait_timeout=2))
    assert rc != 0
    assert result["timed_out"] is True and result["changed"] is True and result["status"] == "InProgress"
    assert "operation_status request_id=%s" % result["request_id"] in result["msg"]
    rc, status, out = run_adhoc(emulator, "operation_status", {"request_id": result["request_id"], "wait": True,
                                                               "wait_timeout": 1})
    assert rc != 0 and status["timed_out"] is True and status["status"] == "InProgress"


def test_instance_that_never_becomes_ready(emulator):
    emulator.fault(method="POST", path="comp=reimage", action={"stuck": True})
    rc, result, out = run_adhoc(emulator, REIMAGE, dict(BASE, wait_for_ready=True, ready_timeout=3))
    assert rc != 0 and result["timed_out"] is True and "still BusyRole" in result["msg"], out


def test_pfx_and_publishsettings(emulator):
    info = emulator.info
    rc, result, out = run_adhoc(emulator, "deployment_info", {"cloud_service": "contoso-web", "deployment_slot": "production"},
                                env={"AZURE_CERT_PATH": info["pfx_path"], "AZURE_CERT_PASSWORD": info["pfx_password"]})
    assert rc == 0 and len(result["role_instances"]) == 6, out
    rc, result, out = run_adhoc(emulator, "deployment_info",
                                {"cloud_service": "contoso-web", "deployment_name": "contoso-web-prod",
                                 "management_certificate": info["publish_settings_path"]},
                                env={"AZURE_CERT_PATH": None, "AZURE_SUBSCRIPTION_ID": None,
                                     "AZURE_MANAGEMENT_URL": None})
    assert rc == 0 and result["deployment"]["name"] == "contoso-web-prod", out


def test_wrong_pfx_password_sends_nothing_and_leaks_nothing(emulator, tmp_path):
    info = emulator.info
    rc, result, out = run_adhoc(emulator, REIMAGE, BASE, extra=["-vvv"],
                                env={"AZURE_CERT_PATH": info["pfx_path"], "AZURE_CERT_PASSWORD": "not-the-password",
                                     "TMPDIR": str(tmp_path)})
    assert rc != 0 and "certificate_password is wrong" in result["msg"]
    assert "not-the-password" not in out and info["pfx_password"] not in out
    assert emulator.requests_made() == []
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.startswith("ansible")]
    assert not any(p.suffix in (".pem", ".key", ".pfx") for p in leftovers)


def test_module_defaults_group_without_environment(emulator, tmp_path):
    play = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/azure_classic.cloud_services.cloud_services:
%s  tasks:
    - name: Info
      azure_classic.cloud_services.deployment_info:
        cloud_service: contoso-web
        deployment_slot: Production
      register: info
    - name: Reimage
      azure_classic.cloud_services.role_instance_reimage:
        cloud_service: contoso-web
        deployment_name: "{{ info.deployment.name }}"
        role_instance: "{{ info.role_instances[0].instance_name }}"
      register: done
    - name: Status
      azure_classic.cloud_services.operation_status:
        request_id: "{{ done.request_id }}"
      register: status
    - name: Verify
      ansible.builtin.assert:
        that:
          - info.deployment.upgrade_domain_count == 3 and not info.deployment.locked
          - info.role_instances | map(attribute='upgrade_domain') | list == [0, 1, 2, 0, 1, 2]
          - status.succeeded
""" % emulator.group_defaults(6)
    no_environment = {"AZURE_SUBSCRIPTION_ID": None, "AZURE_CERT_PATH": None, "AZURE_MANAGEMENT_URL": None, "AZURE_CA_PATH": None}
    proc = run_playbook(emulator, play, tmp_path, env=no_environment)
    assert proc.returncode == 0, proc.output


@pytest.mark.parametrize("args,env,message", [
    (dict(BASE, role_instance="../x"), {}, "role_instance '../x' is not a valid name"),
    (dict(BASE, role_instance="a?b#c"), {}, "is not a valid name"),
    (dict(BASE, cloud_service="con toso"), {}, "cloud_service 'con toso' is not a valid name"),
    (dict(BASE, role_instance="caf\u00e9"), {}, "is not a valid name"),
    (dict(BASE, deployment_slot="blue"), {}, "deployment_slot 'blue' is not a slot"),
    (dict(BASE, deployment_name="x"), {}, "mutually exclusive"),
    ({"cloud_service": "contoso-web", "role_instance": "WebRole1_IN_0"}, {}, "one of the following is required"),
    (BASE, {"AZURE_SUBSCRIPTION_ID": "not-a-guid"}, "subscription_id 'not-a-guid' is not a GUID"),
    (BASE, {"AZURE_MANAGEMENT_URL": "http://127.0.0.1:1"}, "must be an https:// URL"),
    (dict(BASE, timeout=-5), {}, "timeout -5 must be between"),
    (dict(BASE, wait_timeout=10 ** 9), {}, "wait_timeout"),
    (dict(BASE, api_version="2009-01-01"), {}, "too old"),
    (BASE, {"AZURE_CERT_PATH": "/nonexistent/cert.pem"}, "/nonexistent/cert.pem does not exist"),
    (BASE, {"AZURE_CERT_PATH": None}, "no management certificate given"),
])
def test_bad_input_fails_clearly_before_any_request(emulator, args, env, message):
    rc, result, out = run_adhoc(emulator, REIMAGE, args, env=env)
    assert rc != 0
    assert message in result.get("msg", ""), out
    assert "Traceback" not in out
    assert emulator.requests_made() == []


def test_malformed_and_unknown_request_ids(emulator):
    rc, result, out = run_adhoc(emulator, "operation_status", {"request_id": "12345"})
    assert rc != 0 and "not an operation id" in result["msg"] and emulator.requests_made() == []
    rc, result, out = run_adhoc(emulator, "operation_status", {"request_id": "f" * 32})
    assert rc != 0 and result["error"]["http_status"] == 404 and "no operation" in result["msg"]


def test_validate_certs_false_warns(emulator):
    rc, result, out = run_adhoc(emulator, "deployment_info", {"cloud_service": "contoso-web", "deployment_slot": "production",
                                                              "validate_certs": False}, env={"AZURE_CA_PATH": None})
    assert rc == 0 and "validate_certs is false" in out


def test_server_certificate_is_verified_by_default(emulator):
    rc, result, out = run_adhoc(emulator, "deployment_info", {"cloud_service": "contoso-web", "deployment_slot": "production"},
                                env={"AZURE_CA_PATH": None, "REQUESTS_CA_BUNDLE": emulator.info["ca_path"]})
    assert rc != 0 and "TLS with 127.0.0.1" in result["msg"], "REQUESTS_CA_BUNDLE must not be trusted silently"
