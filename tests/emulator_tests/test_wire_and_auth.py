"""Authentication, versioning, wire format and the asynchronous contract."""
import re
import time

import pytest

from tests.emulator import wire

FORBIDDEN = wire.error("ForbiddenError")
NS_ROOT = 'xmlns="http://schemas.microsoft.com/windowsazure" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"'
COMMON_HEADERS = {"cache-control", "date", "server", "x-ms-servedbyregion", "x-ms-request-id", "content-length"}


@pytest.mark.parametrize("cert", [None, "unregistered"])
def test_missing_or_unregistered_certificate_is_forbidden(api, cert):
    response = api("GET", "/services/hostedservices", cert=cert)
    assert response.status_code == 403
    assert response.text == FORBIDDEN


def test_registered_certificate_on_another_subscription_is_forbidden(api):
    response = api("GET", "/services/hostedservices", subscription="00000000-0000-4000-8000-000000000000")
    assert response.status_code == 403
    assert "<Code>ForbiddenError</Code>" in response.text


@pytest.mark.parametrize("version", [None, "2009-01-01", "garbage"])
def test_missing_or_bad_version_is_400(api, version):
    response = api("GET", "/services/hostedservices", version=version)
    assert response.status_code == 400
    assert "<Code>MissingOrIncorrectVersionHeader</Code>" in response.text


def test_version_minimum_is_per_operation(api):
    assert api.reimage(comp="rebuild&resources=allLocalDrives", version="2012-03-01").status_code == 400
    assert api.reimage(version="2010-10-28").status_code == 202


def test_rebuild_requires_resources(api):
    response = api.reimage(comp="rebuild")
    assert response.status_code == 400
    assert "MissingOrInvalidRequiredQueryParameter" in response.text


def test_reimage_answers_202_with_empty_body_and_request_id(api):
    response = api.reimage()
    assert response.status_code == 202
    assert response.content == b""
    assert "content-type" not in {k.lower() for k in response.headers}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-ms-request-id"])
    assert COMMON_HEADERS <= {k.lower() for k in response.headers}


def test_lenient_on_request_content_type(api):
    response = api.reimage(headers={"Content-Type": "application/atom+xml;type=entry;charset=utf-8"})
    assert response.status_code == 202


def test_operation_status_lifecycle(api, emulator):
    emulator.timing(operation_seconds=2.0)
    request_id = api.reimage().headers["x-ms-request-id"]
    body = api("GET", "/operations/%s" % request_id)
    assert body.status_code == 200
    assert body.headers["content-type"] == "application/xml; charset=utf-8"
    assert body.headers["x-ms-request-id"] != request_id
    dashed = "%s-%s-%s-%s-%s" % (request_id[:8], request_id[8:12], request_id[12:16], request_id[16:20], request_id[20:])
    assert body.text == "<Operation %s><ID>%s</ID><Status>InProgress</Status></Operation>" % (NS_ROOT, dashed)
    time.sleep(2.3)
    done = api("GET", "/operations/%s" % request_id).text
    assert done == ("<Operation %s><ID>%s</ID><Status>Succeeded</Status><HttpStatusCode>200</HttpStatusCode>"
                    "</Operation>" % (NS_ROOT, dashed))
    assert api("GET", "/operations/%s" % dashed).text == done, "the dashed form is accepted too"


def test_unknown_operation_is_404(api):
    response = api("GET", "/operations/%s" % ("0" * 32))
    assert response.status_code == 404
    assert "<Code>ResourceNotFound</Code>" in response.text


@pytest.mark.parametrize("path,message", [
    ("/services/hostedservices/nope", "The hosted service does not exist."),
    # Recorded for a deleted deployment addressed by name; assumed for a missing cloud service addressed by slot.
    ("/services/hostedservices/nope/deploymentslots/production", "No deployments were found."),
    ("/services/hostedservices/contoso-web/deployments/nope", "No deployments were found."),
])
def test_not_found_messages(api, path, message):
    response = api("GET", path)
    assert response.status_code == 404
    assert response.text == wire.error("ResourceNotFound", message)


def test_empty_slot_and_unknown_instance(api, emulator):
    emulator.topology({"subscription_id": emulator.subscription_id, "cloud_services": [
        {"name": "contoso-web", "deployments": [{"name": "p", "slot": "production", "roles": [{"name": "R"}]}]}]})
    response = api("GET", "/services/hostedservices/contoso-web/deploymentslots/staging")
    assert response.text == wire.error("ResourceNotFound", "No deployments were found.")
    response = api.reimage("R_IN_9")
    assert response.status_code == 404
    assert response.text == wire.error("ResourceNotFound", "Role instance name is not valid.")


def test_slot_is_case_insensitive_and_both_addressings_work(api):
    by_slot = api("GET", "/services/hostedservices/contoso-web/deploymentslots/Production").text
    by_name = api("GET", "/services/hostedservices/contoso-web/deployments/contoso-web-prod").text
    assert by_slot == by_name
    assert "<DeploymentSlot>Production</DeploymentSlot>" in by_slot
    assert not by_slot.startswith("<?xml")
    assert "<HostName>" not in by_slot


def test_lock_conflict_names_in_flight_operation_and_reads_still_work(api):
    first = api.reimage("WebRole1_IN_0").headers["x-ms-request-id"]
    second = api.reimage("WorkerRole1_IN_1", addressing="deployments/contoso-web-prod")
    assert second.status_code == 409
    assert second.text == wire.error("ConflictError", (
        "Windows Azure is currently performing an operation with x-ms-requestid %s on this deployment that "
        "requires exclusive access." % first))
    deployment = api("GET", "/services/hostedservices/contoso-web/deploymentslots/production").text
    assert "<Locked>true</Locked>" in deployment and "<Status>RunningTransitioning</Status>" in deployment
    other = api.reimage("WebRole1_IN_0", addressing="deploymentslots/staging")
    assert other.status_code == 202, "the lock is per deployment"
    time.sleep(1.2)
    assert api.reimage("WorkerRole1_IN_1").status_code == 202


def test_request_ids_are_plain_random_128_bits(api):
    ids = [api("GET", "/services/hostedservices").headers["x-ms-request-id"] for attempt in range(48)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == 48
    # A version-4 UUID always has 4 as its 13th hex digit; 48 random ids all having it would be a 1 in 16**48 event.
    assert {i[12] for i in ids} != {"4"}


def test_redirect_has_the_recorded_header_set(api, emulator):
    emulator.fault(method="GET", path="hostedservices$", action={"redirect": True})
    response = api("GET", "/services/hostedservices")
    assert response.status_code == 307
    assert {k.lower() for k in response.headers} == {"content-length", "content-type", "date", "location", "server"}


def test_injected_conflict_names_an_operation_the_client_can_wait_for(api, emulator):
    emulator.timing(operation_seconds=0.5)
    emulator.fault(method="POST", path="comp=reimage", times=1, action={"status": 409})
    response = api.reimage()
    assert response.status_code == 409
    holder = re.search(r"x-ms-requestid ([0-9a-f]{32}) on this deployment", response.text).group(1)
    assert response.text == wire.error("ConflictError", wire.conflict_message(holder))
    assert "<Status>InProgress</Status>" in api("GET", "/operations/%s" % holder).text
    time.sleep(0.7)
    assert "<Status>Succeeded</Status>" in api("GET", "/operations/%s" % holder).text
    assert api.reimage().status_code == 202, "the made-up operation held no lock"


def test_injected_conflict_names_the_real_lock_holder_or_uses_the_old_text(api, emulator):
    emulator.timing(operation_seconds=30)
    holder = api.reimage("WebRole1_IN_0").headers["x-ms-request-id"]
    emulator.fault(method="GET", path="deploymentslots/production$", times=1, action={"status": 409})
    response = api("GET", "/services/hostedservices/contoso-web/deploymentslots/production")
    assert response.text == wire.error("ConflictError", wire.conflict_message(holder))
    emulator.fault(method="POST", path="comp=reboot", times=1, action={"status": 409, "conflict_text": "2014"})
    response = api.reimage("WebRole1_IN_0", addressing="deploymentslots/staging", comp="reboot")
    assert response.text == wire.error("ConflictError", wire.CONFLICT_2014)
    assert "x-ms-requestid" not in response.text
