# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the service's operation history: what anyone did to the roll's instances, which decides what counts as
done (exactly once) and explains why an instance is down."""

from __future__ import annotations

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._asm_xml import utc_epoch
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError, InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import iso


def checked_history(client, service, since):
    """Every operation on ``service`` the history shows since ``since`` (the service's time), each request id
    checked before use."""
    operations = client.operation_history(service, since)
    for op in operations:
        try:
            op["request_id"] = names.check_request_id(op.get("request_id") or "")
        except InputError:
            # Kept, so the roll refuses instead of guessing: it is not an id that may go into a URL. The
            # parser has already dropped such an id (request_id None); the text the service sent names it.
            op["bad_request_id"] = op.get("operation_id") or op.get("request_id") or ""
            op["request_id"] = None
    return operations


def latest_operations(operations, kind=None):
    """The latest role-instance operation (of ``kind``, or of any kind) of each instance, as
    {(deployment name lower, instance lower): operation}."""
    latest = {}
    for op in operations:
        if not op["instance"] or (op["kind"] != kind if kind else op["kind"] is None):
            continue
        key = (op["deployment"], op["instance"])
        if key not in latest or op["started"] >= latest[key]["started"]:
            latest[key] = op
    return latest


def describe_operation(op):
    """An operation from the history, for messages: its name, id and start."""
    return "%s %s started %s" % (op.get("name") or "an operation", op.get("request_id") or op.get("bad_request_id"),
                                 iso(op.get("started")) or "at an unknown time")


def in_progress_holder(client, service, deployment_name, since):
    """Request id and name of an operation of any kind still running on the deployment, if the history shows one."""
    try:
        operations = client.operation_history(service, since, result="InProgress")
    except AzureClassicError:
        return None
    for op in operations:
        if op["deployment"] in ("", deployment_name.lower()):
            return "%s (%s%s)" % (op.get("request_id"), op.get("name") or "operation",
                                  " of " + op["parameters"]["roleinstancename"] if op["instance"] else "")
    return None


def ended_after(op, when):
    """Whether the history says ``op`` ended at or after ``when`` (the service's time)."""
    ended = utc_epoch(op.get("completed_time"))
    return ended is not None and ended >= when
