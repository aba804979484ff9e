# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What each module does, on top of the client; the module files hold only docs and argument specs."""

from __future__ import annotations

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import (
    WAIT_TIMEOUT_SPEC, check_wait_timeout)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AcceptedRequestError, AzureClassicError, InputError, ServiceManagementError, WaitTimeoutError)

ADDRESS_SPEC = dict(
    cloud_service=dict(type="str", required=True, aliases=["service_name"]),
    deployment_slot=dict(type="str"),
    deployment_name=dict(type="str"),
)
ADDRESS_KWARGS = dict(mutually_exclusive=[("deployment_slot", "deployment_name")],
                      required_one_of=[("deployment_slot", "deployment_name")])
# The options of role_instance_reimage, role_instance_reboot and role_instance_rebuild (with ADDRESS_KWARGS).
ROLE_INSTANCE_OPERATION_SPEC = dict(
    ADDRESS_SPEC,
    role_instance=dict(type="str", required=True, aliases=["instance_name"]),
    wait=dict(type="bool", default=True),
    wait_for_ready=dict(type="bool", default=False),
    ready_timeout=dict(type="int", default=1200),
    **WAIT_TIMEOUT_SPEC
)


def check_address(params):
    """(cloud_service, slot, deployment_name) after local checks; nothing is sent for bad names."""
    service = names.check_name("cloud_service", params["cloud_service"])
    if params.get("deployment_slot") and params.get("deployment_name"):
        raise InputError("deployment_slot and deployment_name are mutually exclusive: give one")
    if params.get("deployment_name"):
        return service, None, names.check_name("deployment_name", params["deployment_name"])
    if params.get("deployment_slot"):
        return service, names.check_slot(params["deployment_slot"]), None
    raise InputError("give deployment_slot (production or staging) or deployment_name")


def _describe_address(service, slot, deployment_name):
    if deployment_name:
        return "deployment %s of cloud service %s" % (deployment_name, service)
    return "the %s deployment of cloud service %s" % (slot, service)


def not_found_context(err, client, service, slot, deployment_name, instance=None):
    """Name the part the service could not find, in the error the user sees.

    The service says "The hosted service does not exist." only when the cloud service itself is read; through a
    deployment's path it says "No deployments were found." whether the slot is empty, the deployment name is unknown
    or the cloud service is missing: then one more read, of the cloud service, says which.
    """
    if err.http_status == 404:
        text = (err.message or "").lower()
        if "hosted service" in text or "service name" in text:
            err.hint = _no_cloud_service(client, service)
        elif "deployment" in text:
            err.hint = which_is_missing(client, service, slot, deployment_name)
        elif "role instance" in text and instance:
            err.hint = "role instance %s does not exist in %s" % (instance, _describe_address(service, slot, deployment_name))
    return err


def _no_cloud_service(client, service):
    return "cloud service %s does not exist in subscription %s" % (service, client.subscription_id)


def which_is_missing(client, service, slot, deployment_name):
    """After "No deployments were found." for a deployment's path: the sentence saying whether the cloud service
    or its deployment (the slot's, or the one named) is missing, from one read of the cloud service."""
    address = _describe_address(service, slot, deployment_name)
    try:
        client.get_cloud_service(service)
    except AzureClassicError as err:
        if err.http_status == 404:
            return _no_cloud_service(client, service)
        return ("%s does not exist, or the cloud service itself does not: reading the cloud service to tell which "
                "failed too (%s)" % (address, err.readable()))
    return "%s does not exist (the cloud service does)" % address


def _find_instance(deployment, instance):
    for inst in deployment["role_instances"]:
        if inst["instance_name"].lower() == instance.lower():
            return inst
    return None


def role_instance_operation(kind):
    """The body of role_instance_reimage, role_instance_reboot and role_instance_rebuild (``kind``)."""

    def action(m, result):
        p = m.params
        service, slot, deployment_name = check_address(p)
        instance = names.check_name("role_instance", p["role_instance"])
        wait_timeout = check_wait_timeout(p["wait_timeout"])
        ready_timeout = check_wait_timeout(p["ready_timeout"], "ready_timeout")
        client = m.client
        result.update(cloud_service=service, role_instance=instance, deployment_slot=slot,
                      deployment_name=deployment_name, request_id=None, status=None)
        try:
            if m.check_mode:
                deployment = client.get_deployment(service, slot, deployment_name)
                if _find_instance(deployment, instance) is None:
                    raise ServiceManagementError("Role instance name is not valid.", code="ResourceNotFound",
                                                 http_status=404)
                result.update(changed=True, deployment_name=deployment["name"], deployment_slot=deployment["slot"])
                return
            deadline = m.deadline(wait_timeout)
            request_id = client.role_instance_operation(kind, service, instance, slot, deployment_name, deadline)
        except AcceptedRequestError as err:  # the operation started: a task retried on failure must not send it again
            result.update(changed=True, request_id_raw=err.raw_request_id)
            raise
        except AzureClassicError as err:
            raise not_found_context(err, client, service, slot, deployment_name, instance)
        result.update(changed=True, request_id=request_id, status="InProgress")
        if not p["wait"]:
            # Fire and forget costs one request, as a hand-made POST does; the address is reported as given.
            return
        # The wait lasts minutes, so naming the deployment (and slot) costs nothing the user would notice.
        deployment = client.get_deployment(service, slot, deployment_name)
        result.update(deployment_name=deployment["name"], deployment_slot=deployment["slot"])
        try:
            operation = client.wait_for_operation(request_id, deadline)
        except WaitTimeoutError as err:
            err.message = ("timed out after %d seconds waiting for %s operation %s on %s, which is still "
                           "InProgress; it was not cancelled: follow it with "
                           "azure_classic.cloud_services.operation_status request_id=%s"
                           % (wait_timeout, kind, request_id, instance, request_id))
            raise
        result.update(status=operation["status"], http_status_code=operation["http_status_code"])
        if operation["status"] == "Failed":
            error = operation["error"] or {}
            raise ServiceManagementError(
                "%s of %s failed: %s" % (kind, instance, error.get("message") or "no reason given"),
                code=error.get("code") or "OperationFailed", http_status=operation["http_status_code"],
                request_id=request_id, hint="")
        if p["wait_for_ready"]:
            inst = client.wait_for_instance_ready(service, instance, m.deadline(ready_timeout), slot, deployment_name)
            result.update(instance_status=inst["instance_status"])

    return action


def operation_status(m, result):
    p = m.params
    request_id = names.check_request_id(p["request_id"])
    wait_timeout = check_wait_timeout(p["wait_timeout"])
    result.update(request_id=request_id)

    def record(operation):
        result.update(status=operation["status"], http_status_code=operation["http_status_code"],
                      error=operation["error"], done=operation["status"] != "InProgress",
                      succeeded=operation["status"] == "Succeeded",
                      operation_failed=operation["status"] == "Failed",
                      timed_out=False)

    try:
        if p["wait"]:
            operation = m.client.wait_for_operation(request_id, m.deadline(wait_timeout), probe_first=True,
                                                    on_poll=record)
        else:
            operation = m.client.get_operation(request_id)
    except WaitTimeoutError as err:
        err.message = "timed out after %d seconds: operation %s is still InProgress" % (wait_timeout, request_id)
        raise
    except AzureClassicError as err:
        if err.http_status == 404:
            err.hint = "no operation %s is known to subscription %s" % (request_id, m.client.subscription_id)
        raise
    record(operation)
    if operation["status"] == "Failed" and p["fail_on_failed"]:
        error = operation["error"] or {}
        raise ServiceManagementError("operation %s failed: %s" % (request_id, error.get("message") or "no reason given"),
                                     code=error.get("code") or "OperationFailed",
                                     http_status=operation["http_status_code"], request_id=request_id, hint="")


def deployment_info(m, result):
    service, slot, deployment_name = check_address(m.params)
    try:
        deployment = m.client.get_deployment(service, slot, deployment_name)
    except AzureClassicError as err:
        raise not_found_context(err, m.client, service, slot, deployment_name)
    instances = deployment.pop("role_instances")
    result.update(deployment=deployment, role_instances=instances)
