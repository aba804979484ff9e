"""The real legacy Python SDK (azure-servicemanagement-legacy, from PyPI) against the emulator over mutual TLS.

The SDK was written against the live service and parses its answers with its own models (qualified tag names,
so a namespace prefix matters); if it reads the emulator's answers as it read the service's, clients built on
it will too. It authenticates with the management certificate; it sends requests through a requests.Session
without ``verify``, so REQUESTS_CA_BUNDLE (set on these machines) decides which CA it trusts: the test points
that variable at the emulator's CA for this process only.
"""
import re
import time
from urllib.parse import urlsplit

import pytest
from azure.common import AzureConflictHttpError, AzureHttpError, AzureMissingResourceHttpError
from azure.servicemanagement import ServiceManagementService

SERVICE, PRODUCTION, STAGING = "contoso-web", "contoso-web-prod", "contoso-web-staging"
QUIET = dict(progress_callback=None, success_callback=None, failure_callback=None)


def _client(emulator, monkeypatch, certificate="certificate_path"):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emulator.info["ca_path"])
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    return ServiceManagementService(emulator.subscription_id, emulator.info[certificate],
                                    host=urlsplit(emulator.url).netloc)


def _wait(sms, request_id):
    return sms.wait_for_operation_status(request_id, timeout=15, sleep_interval=0.1, **QUIET)


def test_sdk_reads_cloud_services_and_deployments(emulator, monkeypatch):
    sms = _client(emulator, monkeypatch)
    services = sms.list_hosted_services()
    assert [s.service_name for s in services] == [SERVICE]
    assert services[0].hosted_service_properties.location == "West US"
    assert services[0].url.endswith("/services/hostedservices/" + SERVICE)

    by_slot = sms.get_deployment_by_slot(SERVICE, "production")
    by_name = sms.get_deployment_by_name(SERVICE, PRODUCTION)
    assert by_slot.name == by_name.name == PRODUCTION and by_slot.private_id == by_name.private_id
    assert by_slot.deployment_slot == "Production" and by_slot.status == "Running" and by_slot.locked is False
    assert by_slot.upgrade_domain_count == "3" and by_slot.label == PRODUCTION
    instances = list(by_slot.role_instance_list)
    assert [i.instance_name for i in instances] == ["WebRole1_IN_%d" % k for k in range(3)] + [
        "WorkerRole1_IN_%d" % k for k in range(3)]
    assert {(i.instance_status, i.power_state) for i in instances} == {("ReadyRole", "Started")}
    assert [(i.instance_upgrade_domain, i.instance_fault_domain) for i in instances[:3]] == [(0, 0), (1, 1), (2, 0)]
    endpoint = instances[0].instance_endpoints[0]
    assert (endpoint.name, endpoint.public_port, endpoint.local_port, endpoint.protocol) == ("Endpoint1", "80", "80", "http")
    assert endpoint.vip == by_slot.virtual_ips[0].address
    assert instances[3].instance_endpoints is None, "worker roles have no endpoint by default"
    embedded = sms.get_hosted_service_properties(SERVICE, embed_detail=True)
    assert sorted(d.name for d in embedded.deployments) == [PRODUCTION, STAGING]


def test_sdk_scenario_operations_conflict_failure_and_operation_list(emulator, monkeypatch):
    emulator.timing(operation_seconds=0.6, recovery_seconds=0.1)
    emulator.fault(method="POST", path="comp=rebuild", times=1, action={
        "fail_operation": {"code": "InternalError", "message": "The host could not rebuild the instance."}})
    sms = _client(emulator, monkeypatch)
    started = time.time()

    reimage = sms.reimage_role_instance(SERVICE, PRODUCTION, "WebRole1_IN_0").request_id
    assert re.fullmatch(r"[0-9a-f]{32}", reimage)
    with pytest.raises(AzureConflictHttpError) as conflict:
        sms.reboot_role_instance(SERVICE, PRODUCTION, "WorkerRole1_IN_1")
    assert conflict.value.status_code == 409 and "x-ms-requestid %s on this deployment" % reimage in str(conflict.value)
    assert sms.get_operation_status(reimage).status == "InProgress"
    done = _wait(sms, reimage)
    # (the SDK's Operation model looks for <Id>; the service, recorded, and the emulator write <ID>)
    assert (done.status, done.http_status_code) == ("Succeeded", "200")

    reboot = sms.reboot_role_instance(SERVICE, STAGING, "WebRole1_IN_1").request_id
    assert _wait(sms, reboot).status == "Succeeded"

    rebuild = sms.rebuild_role_instance(SERVICE, PRODUCTION, "WorkerRole1_IN_2").request_id
    failed = _wait(sms, rebuild)
    assert (failed.status, failed.http_status_code) == ("Failed", "500")
    assert (failed.error.code, failed.error.message) == ("InternalError", "The host could not rebuild the instance.")

    with pytest.raises(AzureMissingResourceHttpError) as missing:
        sms.get_deployment_by_name(SERVICE, "gone")
    assert missing.value.status_code == 404 and "<Message>No deployments were found.</Message>" in str(missing.value)
    with pytest.raises(AzureMissingResourceHttpError):
        sms.reimage_role_instance(SERVICE, PRODUCTION, "WebRole1_IN_9")

    window = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) for t in (started - 60, time.time() + 60)]
    listed = {op.operation_id.replace("-", ""): op for op in sms.list_subscription_operations(*window).subscription_operations}
    assert set(listed) == {reimage, reboot, rebuild}
    first = listed[reimage]
    assert first.operation_name == "ReimageRoleInstance" and first.operation_kind == "Update"
    assert dict(first.operation_parameters) == {"serviceName": SERVICE, "deploymentName": PRODUCTION,
                                                "roleInstanceName": "WebRole1_IN_0"}
    assert first.operation_object_id == "/%s/services/hostedservices/%s/deployments/%s/roleinstances/WebRole1_IN_0" % (
        emulator.subscription_id, SERVICE, PRODUCTION)
    caller = first.operation_caller
    assert caller.used_service_management_api is True and caller.client_ip == "127.0.0.1"
    assert re.fullmatch(r"[0-9A-F]{40}", caller.subscription_certificate_thumbprint)
    assert (first.operation_status.status, first.operation_status.http_status_code) == ("Succeeded", 200)
    assert listed[rebuild].operation_status.status == "Failed"
    assert listed[reboot].operation_parameters["deploymentName"] == STAGING

    only_failed = sms.list_subscription_operations(*window, operation_result_filter="Failed")
    assert [op.operation_name for op in only_failed.subscription_operations] == ["RebuildRoleInstance"]
    staging_only = sms.list_subscription_operations(
        *window, object_id_filter="/%s/services/hostedservices/%s/deployments/%s" % (
            emulator.subscription_id, SERVICE, STAGING))
    assert [op.operation_id.replace("-", "") for op in staging_only.subscription_operations] == [reboot]


def test_sdk_with_an_unregistered_certificate_is_refused(emulator, monkeypatch):
    sms = _client(emulator, monkeypatch, certificate="unregistered_certificate_path")
    with pytest.raises(AzureHttpError) as refused:
        sms.list_hosted_services()
    assert refused.value.status_code == 403 and "<Code>ForbiddenError</Code>" in str(refused.value)
