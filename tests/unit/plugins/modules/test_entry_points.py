"""Each module's main(): its arguments, check mode, fire-and-forget, failures turned into results, no_log. The
client is a stub; the end-to-end suite (tests/e2e) runs the real one against the emulator."""
import pytest

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    CredentialError, ServiceManagementError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.modules import (
    deployment_info, operation_status, reimage_rollout, role_instance_reboot, role_instance_rebuild,
    role_instance_reimage)
from ansible_collections.azure_classic.cloud_services.tests.unit.plugins.modules.utils import (
    CONNECTION_ENV, REQUEST_ID, StubClient, deployment, instance, operation, run_module, run_module_output,
    stub_client)

OPERATION_MODULES = {"reimage": role_instance_reimage, "reboot": role_instance_reboot, "rebuild": role_instance_rebuild}
KINDS = sorted(OPERATION_MODULES)
TARGET = {"cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": "WebRole1_IN_0"}
PASSWORD = "Pw-never-shown-7f3a"


@pytest.fixture
def client():
    return StubClient()


@pytest.fixture
def factory(monkeypatch, client):
    return stub_client(monkeypatch, client)


# -- role_instance_reimage, role_instance_reboot, role_instance_rebuild --------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_each_module_sends_its_own_operation_once_and_waits_for_it(kind, factory, client):
    result, failed = run_module(OPERATION_MODULES[kind], TARGET)
    assert not failed
    assert [post[1][:5] for post in client.posts()] == [(kind, "contoso-web", "WebRole1_IN_0", "production", None)]
    assert client.names() == ["role_instance_operation", "get_deployment", "wait_for_operation"]
    assert result["changed"] is True
    assert (result["request_id"], result["status"], result["http_status_code"]) == (REQUEST_ID, "Succeeded", 200)
    assert (result["deployment_name"], result["deployment_slot"]) == ("contoso-web-prod", "production")
    assert "instance_status" not in result and "timed_out" not in result
    assert client.closed == 1
    assert len(factory.options) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_check_mode_reads_the_deployment_sends_nothing_and_reports_changed(kind, factory, client):
    args = dict(TARGET, deployment_slot="Production")
    result, failed = run_module(OPERATION_MODULES[kind], args, check_mode=True)
    assert not failed
    assert client.posts() == []
    assert client.names() == ["get_deployment"]
    assert result["changed"] is True
    assert result["request_id"] is None and result["status"] is None
    assert (result["deployment_name"], result["deployment_slot"]) == ("contoso-web-prod", "production")


def test_check_mode_fails_on_an_instance_the_deployment_does_not_have(factory, client):
    result, failed = run_module(role_instance_reimage, dict(TARGET, role_instance="WebRole1_IN_9"), check_mode=True)
    assert failed and client.posts() == []
    assert result["changed"] is False
    assert result["error"]["code"] == "ResourceNotFound"
    assert "role instance WebRole1_IN_9 does not exist in the production deployment of cloud service contoso-web" \
        in result["msg"]


def test_check_mode_finds_the_instance_whatever_its_case(factory, client):
    result, failed = run_module(role_instance_reboot, dict(TARGET, role_instance="webrole1_in_1"), check_mode=True)
    assert not failed and result["changed"] is True and client.posts() == []


@pytest.mark.parametrize("kind", KINDS)
def test_wait_false_sends_one_post_and_returns_its_request_id(kind, factory, client):
    address = {"cloud_service": "contoso-web", "deployment_name": "contoso-web-prod", "role_instance": "WebRole1_IN_1"}
    result, failed = run_module(OPERATION_MODULES[kind], dict(address, wait=False))
    assert not failed
    assert client.names() == ["role_instance_operation"]
    assert client.posts()[0][1][:5] == (kind, "contoso-web", "WebRole1_IN_1", None, "contoso-web-prod")
    assert result["changed"] is True
    assert (result["request_id"], result["status"]) == (REQUEST_ID, "InProgress")
    # Nothing was read, so the address is reported as given.
    assert (result["deployment_name"], result["deployment_slot"]) == ("contoso-web-prod", None)


def test_the_post_gets_the_wait_timeout_as_its_deadline(factory, client):
    run_module(role_instance_reimage, dict(TARGET, wait=False, wait_timeout=45))
    assert client.posts()[0][2]["deadline"].seconds == 45


def test_wait_for_ready_reports_the_instance_status(factory, client):
    result, failed = run_module(role_instance_rebuild, dict(TARGET, wait_for_ready=True, ready_timeout=300))
    assert not failed
    assert client.names()[-1] == "wait_for_instance_ready"
    assert client.calls[-1][2]["deadline"].seconds == 300
    assert result["instance_status"] == "ReadyRole"


def test_a_service_error_on_the_post_is_a_clean_failure_with_its_request_id(monkeypatch):
    error = ServiceManagementError("Windows Azure is currently performing an operation on this deployment.",
                                   code="ConflictError", http_status=409, request_id="a" * 32)
    client = StubClient(raises={"role_instance_operation": error})
    stub_client(monkeypatch, client)
    result, failed = run_module(role_instance_reimage, TARGET)
    assert failed
    assert result["changed"] is False
    assert result["request_id"] == "a" * 32
    assert result["error"] == {"code": "ConflictError", "message": error.message, "http_status": 409,
                               "request_id": "a" * 32}
    assert result["msg"].startswith("409 ConflictError: Windows Azure is currently performing an operation")
    assert "another operation holds the deployment's lock" in result["msg"]
    assert client.closed == 1


def test_an_unforeseen_error_after_the_post_still_reports_the_change_and_its_id(monkeypatch):
    client = StubClient(raises={"get_deployment": KeyError("InstanceName")})
    stub_client(monkeypatch, client)
    result, failed = run_module(role_instance_reimage, TARGET)
    assert failed and result["changed"] is True and result["request_id"] == REQUEST_ID
    assert result["error"]["code"] == "UnexpectedError" and "KeyError: 'InstanceName'" in result["msg"]
    assert client.closed == 1


@pytest.mark.parametrize("service_read, hint", [
    (None, "(the production deployment of cloud service contoso-web does not exist (the cloud service does))"),
    (ServiceManagementError("The hosted service does not exist.", code="ResourceNotFound", http_status=404),
     "(cloud service contoso-web does not exist in subscription %s)" % StubClient.subscription_id),
    (ServiceManagementError("The server encountered an internal error.", code="InternalError", http_status=500),
     "(the production deployment of cloud service contoso-web does not exist, or the cloud service itself does not: "
     "reading the cloud service to tell which failed too (500 InternalError: The server encountered an internal error"),
], ids=["deployment-missing", "cloud-service-missing", "cannot-tell"])
def test_a_missing_deployment_or_cloud_service_is_told_apart_by_one_more_read(monkeypatch, service_read, hint):
    error = ServiceManagementError("No deployments were found.", code="ResourceNotFound", http_status=404)
    raises = {"role_instance_operation": error}
    if service_read is not None:
        raises["get_cloud_service"] = service_read
    client = StubClient(raises=raises)
    stub_client(monkeypatch, client)
    result, failed = run_module(role_instance_reboot, TARGET)
    assert failed and hint in result["msg"], result["msg"]
    assert result["error"]["http_status"] == 404 and result["request_id"] is None
    assert client.names() == ["role_instance_operation", "get_cloud_service"]
    assert len(client.posts()) == 1, "the read tells which is missing; nothing is sent again"


def test_deployment_info_tells_a_missing_deployment_from_a_missing_cloud_service(monkeypatch):
    error = ServiceManagementError("No deployments were found.", code="ResourceNotFound", http_status=404)
    client = StubClient(raises={"get_deployment": error})
    stub_client(monkeypatch, client)
    result, failed = run_module(deployment_info, {"cloud_service": "contoso-web", "deployment_name": "gone"})
    assert failed and "(deployment gone of cloud service contoso-web does not exist (the cloud service does))" in result["msg"]
    assert client.names() == ["get_deployment", "get_cloud_service"]


def test_a_failed_operation_fails_the_task_but_reports_the_change(monkeypatch):
    failed_op = operation("Failed", 500, {"code": "InternalError", "message": "The server encountered an internal error."})
    client = StubClient(operation_data=failed_op)
    stub_client(monkeypatch, client)
    result, failed = run_module(role_instance_reimage, TARGET)
    assert failed
    assert result["changed"] is True and result["request_id"] == REQUEST_ID
    assert (result["status"], result["http_status_code"]) == ("Failed", 500)
    assert result["error"]["code"] == "InternalError"
    assert result["msg"] == "500 InternalError: reimage of WebRole1_IN_0 failed: The server encountered an internal error"


def test_a_wait_that_runs_out_sets_timed_out_and_says_how_to_follow(monkeypatch):
    error = WaitTimeoutError("operation was still InProgress", request_id=REQUEST_ID, last_status="InProgress")
    client = StubClient(raises={"wait_for_operation": error})
    stub_client(monkeypatch, client)
    result, failed = run_module(role_instance_reboot, dict(TARGET, wait_timeout=30))
    assert failed
    assert result["timed_out"] is True
    assert result["changed"] is True and result["request_id"] == REQUEST_ID and result["status"] == "InProgress"
    assert result["error"]["code"] == "WaitTimeout"
    assert "timed out after 30 seconds waiting for reboot operation" in result["msg"]
    assert "operation_status request_id=%s" % REQUEST_ID in result["msg"]


@pytest.mark.parametrize("bad, named", [
    ({"cloud_service": "contoso web"}, "cloud_service"),
    ({"role_instance": "../WebRole1_IN_0"}, "role_instance"),
    ({"deployment_slot": "prod"}, "deployment_slot"),
    ({"wait_timeout": -1}, "wait_timeout"),
    ({"ready_timeout": 86401}, "ready_timeout"),
])
def test_bad_input_fails_naming_it_before_any_client_is_built(bad, named, factory, client):
    result, failed = run_module(role_instance_reimage, dict(TARGET, **bad))
    assert failed
    assert result["msg"].startswith(named)
    assert result["error"]["http_status"] is None
    assert factory.options == [] and client.calls == []


def test_slot_and_name_together_are_refused_by_the_argument_spec(factory):
    result, failed = run_module(role_instance_rebuild, dict(TARGET, deployment_name="contoso-web-prod"))
    assert failed and "mutually exclusive" in result["msg"]
    assert factory.options == []


def test_slot_or_name_is_required(factory):
    args = {"cloud_service": "contoso-web", "role_instance": "WebRole1_IN_0"}
    result, failed = run_module(role_instance_rebuild, args)
    assert failed and "deployment_slot" in result["msg"] and "deployment_name" in result["msg"]
    assert factory.options == []


def test_connection_options_reach_the_client_factory_converted(factory):
    args = dict(TARGET, management_cert_path="/dev/null/cert.pem", timeout="30", validate_certs="no",
                subscription_id="3F2B3C1E-0000-4000-8000-000000000001")
    run_module(role_instance_reimage, args)
    options = factory.options[0]
    assert options["management_certificate"] == "/dev/null/cert.pem"
    assert options["timeout"] == 30 and options["validate_certs"] is False
    assert options["subscription_id"] == "3F2B3C1E-0000-4000-8000-000000000001"


def test_connection_options_fall_back_to_the_environment(factory, monkeypatch):
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "3f2b3c1e-0000-4000-8000-000000000002")
    monkeypatch.setenv("AZURE_CERT_PASSWORD", PASSWORD)
    run_module(role_instance_reimage, TARGET)
    assert factory.options[0]["subscription_id"] == "3f2b3c1e-0000-4000-8000-000000000002"
    assert factory.options[0]["certificate_password"] == PASSWORD


# -- no_log ----------------------------------------------------------------------------------------------------------
def test_the_certificate_password_never_reaches_the_output_even_when_an_error_repeats_it(monkeypatch, capsys):
    error = ServiceManagementError("the service echoed %s back" % PASSWORD, code="BadRequest", http_status=400)
    stub_client(monkeypatch, StubClient(raises={"role_instance_operation": error}))
    out, result, status = run_module_output(role_instance_reimage, dict(TARGET, certificate_password=PASSWORD), capsys)
    assert status == 1 and result["failed"] is True
    assert PASSWORD not in out
    assert result["invocation"]["module_args"]["certificate_password"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert "the service echoed" in result["msg"]


def test_a_wrong_certificate_password_fails_without_showing_it(monkeypatch, capsys, tmp_path, keypair):
    """The real build_client: the PKCS#12 file is read before any request, and the password stays hidden."""
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
    for name in CONNECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    key, cert = keypair
    path = tmp_path / "management.pfx"
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"unit", key, cert, None, BestAvailableEncryption(b"right")))
    args = dict(TARGET, management_certificate=str(path), certificate_password=PASSWORD,
                subscription_id="3f2b3c1e-0000-4000-8000-000000000001")
    out, result, status = run_module_output(role_instance_reimage, args, capsys)
    assert status == 1
    assert PASSWORD not in out
    assert "certificate_password is wrong" in result["msg"]
    assert result["changed"] is False and result["error"]["http_status"] is None


def test_a_credential_error_is_a_clean_failure(monkeypatch):
    def refuse(options, warn=None, poll=None, rate_limiter=None):
        raise CredentialError("the private key in /x.pem is encrypted: set certificate_password")
    for name in CONNECTION_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("ansible_collections.azure_classic.cloud_services.plugins.module_utils._module_base.build_client",
                        refuse)
    result, failed = run_module(role_instance_reimage, TARGET)
    assert failed and result["msg"] == "the private key in /x.pem is encrypted: set certificate_password"
    assert "timed_out" not in result


# -- operation_status --------------------------------------------------------------------------------------------------
def test_operation_status_reads_once_and_normalises_the_request_id(factory, client):
    result, failed = run_module(operation_status, {"request_id": " 904B574F-8C60-B8CD-9906-593A7C53B6D5 "})
    assert not failed
    assert client.calls == [("get_operation", (REQUEST_ID,), {})]
    assert result["changed"] is False
    assert result["request_id"] == REQUEST_ID
    assert (result["status"], result["done"], result["succeeded"], result["operation_failed"]) == (
        "Succeeded", True, True, False)
    assert result["timed_out"] is False


def test_operation_status_in_check_mode_still_reads(factory, client):
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID}, check_mode=True)
    assert not failed and result["status"] == "Succeeded" and client.names() == ["get_operation"]


def test_operation_status_waits_with_a_first_probe(factory, client):
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID, "wait": True, "wait_timeout": 60})
    assert not failed
    assert client.names() == ["wait_for_operation"]
    assert client.calls[0][2]["probe_first"] is True and client.calls[0][2]["deadline"].seconds == 60
    assert result["done"] is True


FAILED_OPERATION = operation("Failed", 409, {"code": "ConflictError", "message": "Another operation is in progress."})


def test_operation_status_fails_on_a_failed_operation_by_default(monkeypatch):
    stub_client(monkeypatch, StubClient(operation_data=FAILED_OPERATION))
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID})
    assert failed
    assert result["operation_failed"] is True and result["done"] is True
    assert result["error"]["code"] == "ConflictError" and result["error"]["request_id"] == REQUEST_ID
    assert "operation %s failed: Another operation is in progress" % REQUEST_ID in result["msg"]


def test_operation_status_reports_a_failed_operation_without_failing_when_asked(monkeypatch):
    stub_client(monkeypatch, StubClient(operation_data=FAILED_OPERATION))
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID, "fail_on_failed": False})
    assert not failed and "failed" not in result
    assert result["operation_failed"] is True and result["succeeded"] is False
    assert result["error"] == FAILED_OPERATION["error"]


def test_operation_status_in_progress_is_not_done(monkeypatch):
    stub_client(monkeypatch, StubClient(operation_data=operation("InProgress", None)))
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID})
    assert not failed
    assert (result["done"], result["succeeded"], result["operation_failed"]) == (False, False, False)


def test_operation_status_timeout_sets_timed_out(monkeypatch):
    error = WaitTimeoutError("still InProgress", request_id=REQUEST_ID, last_status="InProgress")
    stub_client(monkeypatch, StubClient(raises={"wait_for_operation": error}))
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID, "wait": True, "wait_timeout": 5})
    assert failed and result["timed_out"] is True
    assert result["msg"] == "timed out after 5 seconds: operation %s is still InProgress" % REQUEST_ID


def test_operation_status_unknown_id_names_the_subscription(monkeypatch):
    error = ServiceManagementError("The operation request ID was not found.", code="ResourceNotFound", http_status=404)
    client = StubClient(raises={"get_operation": error})
    stub_client(monkeypatch, client)
    result, failed = run_module(operation_status, {"request_id": REQUEST_ID})
    assert failed
    assert "no operation %s is known to subscription %s" % (REQUEST_ID, client.subscription_id) in result["msg"]


def test_operation_status_refuses_a_bad_request_id_before_any_client(factory):
    result, failed = run_module(operation_status, {"request_id": "not-an-id"})
    assert failed and result["msg"].startswith("request_id")
    assert factory.options == []


# -- deployment_info --------------------------------------------------------------------------------------------------
def test_deployment_info_returns_the_deployment_and_its_instances(monkeypatch):
    instances = [instance("WorkerRole1_IN_0", "ReadyRole", 0, "WorkerRole1"),
                 instance("WorkerRole1_IN_1", "BusyRole", 1, "WorkerRole1")]
    client = StubClient(deployment_data=deployment("contoso-worker", "staging", instances))
    stub_client(monkeypatch, client)
    args = {"service_name": "contoso-web", "deployment_name": "contoso-worker"}
    result, failed = run_module(deployment_info, args)
    assert not failed
    assert client.calls == [("get_deployment", ("contoso-web", None, "contoso-worker"), {})]
    assert result["changed"] is False
    assert result["role_instances"] == instances
    assert result["deployment"]["name"] == "contoso-worker" and result["deployment"]["slot"] == "staging"
    assert "role_instances" not in result["deployment"]
    assert client.closed == 1


def test_deployment_info_in_check_mode_reads_the_same(factory, client):
    result, failed = run_module(deployment_info, {"cloud_service": "contoso-web", "deployment_slot": "STAGING"},
                                check_mode=True)
    assert not failed and result["deployment"]["name"] == "contoso-web-prod"
    assert client.calls == [("get_deployment", ("contoso-web", "staging", None), {})]


def test_deployment_info_not_found_names_what_is_missing(monkeypatch):
    error = ServiceManagementError("The hosted service does not exist.", code="ResourceNotFound", http_status=404)
    stub_client(monkeypatch, StubClient(raises={"get_deployment": error}))
    result, failed = run_module(deployment_info, {"cloud_service": "contoso-web", "deployment_slot": "production"})
    assert failed and "cloud service contoso-web does not exist in subscription" in result["msg"]
    assert "deployment" not in result and "role_instances" not in result


# -- reimage_rollout (documentation stub of the action) ------------------------------------------------------------------
def test_reimage_rollout_as_a_module_refuses_to_run(factory):
    result, failed = run_module(reimage_rollout, {"step": "plan"})
    assert failed and "runs as an action on the controller" in result["msg"]
    assert factory.options == []
