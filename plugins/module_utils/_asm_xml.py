# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers for Service Management response bodies; the only place that reads XML.

Lookups ignore namespaces: real bodies use the windowsazure default namespace, but the documentation
samples have none, and the parsers should accept both.
"""

from __future__ import annotations

import calendar
import re
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import ServiceManagementError, shown

_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


OPERATION_STATUSES = ("InProgress", "Succeeded", "Failed")
_DIGITS_RE = re.compile(r"[0-9]+")
# The service never declares a DTD; one that does could define entities that expand without end.
_DTD_RE = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)


class ParseError(ServiceManagementError):
    """An answer that is not the XML the service sends: not XML, another document, a required field missing.
    A ServiceManagementError (code BadResponse), so every caller handles it as the service's bad answer."""

    def __init__(self, message):
        super().__init__(message, code="BadResponse",
                         hint="the endpoint did not answer as the Service Management API does: check management_url "
                              "and any proxy between")


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _root(body, expected=None):
    """The document's root element; with ``expected``, it must be that element (namespace aside)."""
    # Imported here: a task that only sends a POST (202, empty body) never parses XML, and pays nothing for it.
    import xml.etree.ElementTree as ET
    if isinstance(body, bytes):
        body = body.decode("utf-8-sig", errors="replace")
    if _DTD_RE.search(body or ""):
        raise ParseError("the answer declares a document type, which the service never does")
    try:
        root = ET.fromstring(body.strip())
    except ET.ParseError as exc:
        raise ParseError("the answer is not valid XML: %s" % exc) from None
    if expected and _local(root.tag) != expected:
        raise ParseError("the answer is a <%s> document, not <%s>" % (shown(_local(root.tag)), expected))
    return root


def _child(elem, name):
    if elem is None:
        return None
    for child in elem:
        if _local(child.tag) == name:
            return child
    return None


def _children(elem, name):
    return [c for c in (elem if elem is not None else []) if _local(c.tag) == name]


def _text(elem, name, default=None):
    child = _child(elem, name)
    if child is None:
        return default
    if child.text is None:
        return default if child.attrib.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true" else ""
    return child.text


def _required(elem, name, where):
    """The text of a field the collection relies on; a ParseError naming it when it is missing or empty."""
    value = _text(elem, name)
    if value is None or not value.strip():
        raise ParseError("the answer's %s has no %s" % (where, name))
    return value


def _int(elem, name):
    """An integer field; None when absent (older API versions), a ParseError when it is not a number."""
    value = _text(elem, name)
    if value in (None, ""):
        return None
    if not _DIGITS_RE.fullmatch(value.strip()):
        raise ParseError("the answer's %s is %s, not a number" % (name, shown(value)))
    return int(value)


def _bool(elem, name):
    value = _text(elem, name)
    return None if value is None else value.strip().lower() == "true"


def normalize_request_id(value):
    """Request ids travel as 32 hex digits; Operation bodies show them as a dashed GUID."""
    value = (value or "").strip()
    if not _GUID_RE.match(value):
        return None
    return value.replace("-", "").lower()


def parse_error(body):
    """(code, message) of an <Error> body, or (None, None) when the body is not one."""
    try:
        root = _root(body)
    except ParseError:
        return None, None
    if _local(root.tag) != "Error":
        return None, None
    return _text(root, "Code"), _text(root, "Message")


def parse_operation(body):
    root = _root(body, "Operation")
    error = _child(root, "Error")
    status = _required(root, "Status", "Operation")
    if status not in OPERATION_STATUSES:
        raise ParseError("the answer's Operation Status is %s, not one of %s" % (shown(status), ", ".join(OPERATION_STATUSES)))
    return {
        "request_id": normalize_request_id(_text(root, "ID")),
        "status": status,
        "http_status_code": _int(root, "HttpStatusCode"),
        # The service's words, shown as they are wherever an operation's failure is reported: escaped once, here.
        "error": {"code": shown(_text(error, "Code")), "message": shown(_text(error, "Message"))} if error is not None else None,
    }


def _role_instance(elem):
    return {
        "role_name": _required(elem, "RoleName", "RoleInstance"),
        "instance_name": _required(elem, "InstanceName", "RoleInstance"),
        "instance_status": _required(elem, "InstanceStatus", "RoleInstance"),
        "upgrade_domain": _int(elem, "InstanceUpgradeDomain"),
        "fault_domain": _int(elem, "InstanceFaultDomain"),
        "instance_size": _text(elem, "InstanceSize"),
        "instance_state_details": _text(elem, "InstanceStateDetails") or None,
        "ip_address": _text(elem, "IpAddress"),
        "power_state": _text(elem, "PowerState"),
        "host_name": _text(elem, "HostName"),
    }


def _deployment(elem):
    instances = [_role_instance(r) for r in _children(_child(elem, "RoleInstanceList"), "RoleInstance")]
    roles = [_text(r, "RoleName") for r in _children(_child(elem, "RoleList"), "Role")]
    for inst in instances:
        if inst["role_name"] and inst["role_name"] not in roles:
            roles.append(inst["role_name"])
    return {
        "name": _required(elem, "Name", "Deployment"),
        "slot": _required(elem, "DeploymentSlot", "Deployment").lower(),
        "private_id": _text(elem, "PrivateID"),
        "status": _text(elem, "Status"),
        "url": _text(elem, "Url"),
        "locked": _bool(elem, "Locked"),
        "upgrade_domain_count": _int(elem, "UpgradeDomainCount"),
        "sdk_version": _text(elem, "SdkVersion"),
        "created_time": _text(elem, "CreatedTime"),
        "last_modified_time": _text(elem, "LastModifiedTime"),
        "roles": roles,
        "role_instances": instances,
    }


def parse_deployment(body):
    root = _root(body, "Deployment")
    return _deployment(root)


def _hosted_service(elem):
    props = _child(elem, "HostedServiceProperties")
    deployments = _child(elem, "Deployments")
    return {
        "name": _required(elem, "ServiceName", "HostedService"),
        "url": _text(elem, "Url"),
        "location": _text(props, "Location"),
        "affinity_group": _text(props, "AffinityGroup"),
        "status": _text(props, "Status"),
        "deployments": None if deployments is None else [_deployment(d) for d in _children(deployments, "Deployment")],
    }


def parse_hosted_service(body):
    root = _root(body, "HostedService")
    return _hosted_service(root)


def parse_hosted_services(body):
    root = _root(body, "HostedServices")
    return [_hosted_service(s) for s in _children(root, "HostedService")]


def utc_epoch(value):
    """Epoch seconds of a service timestamp (always UTC, like 2015-03-04T05:06:07Z), or None. calendar.timegm,
    not time.mktime: the controller's time zone and summer time play no part."""
    try:
        return calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
    except (TypeError, ValueError):
        return None


def parse_subscription_operations(body):
    """(operations, continuation_token) of a List Subscription Operations body."""
    root = _root(body, "SubscriptionOperationCollection")
    ops = []
    for elem in _children(_child(root, "SubscriptionOperations"), "SubscriptionOperation"):
        status = _child(elem, "OperationStatus")
        params = {}
        for param in _children(_child(elem, "OperationParameters"), "OperationParameter"):
            params[_text(param, "Name")] = _text(param, "Value")
        ops.append({
            "request_id": normalize_request_id(_text(elem, "OperationId")),
            # As sent: an id that is not one (request_id None) is reported, never guessed about.
            "operation_id": _text(elem, "OperationId"),
            "object_id": _text(elem, "OperationObjectId"),
            "name": _text(elem, "OperationName"),
            "parameters": params,
            "status": _text(status, "Status"),
            "http_status_code": _int(status, "HttpStatusCode"),
            "started_time": _text(elem, "OperationStartedTime"),
            "started": utc_epoch(_text(elem, "OperationStartedTime")),
            "completed_time": _text(elem, "OperationCompletedTime"),
        })
    return ops, _text(root, "ContinuationToken") or None
