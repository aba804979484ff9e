# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Service Management client: every API operation the collection uses, the service's errors and clock, and the
never-re-send-blindly logic (a lost answer or a 409 looked up in the service's history, never sent again on a
guess). How requests reach the service (TLS, proxies, redirects, retries, bounds) is _transport.py's."""

from __future__ import annotations

import email.utils
import re
import time
from urllib.parse import quote, urlencode

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AcceptedRequestError, AmbiguousRequestError, AzureClassicError, InputError, ServiceManagementError,
    WaitTimeoutError, shown)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._retries import backoff_delay
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._transport import (
    POOL_SIZE, REQUESTS_IMPORT_ERROR, Transport, host_of)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import (
    READY, Deadline, PollSchedule, instance_settled, operation_ended, wait_until)

CONFLICT_HOLDER_RE = re.compile(r"x-ms-requestid\s+([0-9a-fA-F]{32})")
LOST_ANSWER_GRACE = 5.0
# Times sent to the service and compared with its history are the service's, from the Date header of its answers
# (see ServiceManagementClient.service_now). What is left of a skew after that is the header's one-second
# resolution and the service's own machines disagreeing: a lost answer's operation counts as ours when the history
# shows it started at most this long before we sent it.
CLOCK_TOLERANCE = 120
# A skew between the controller's clock and the service's larger than this is worth a warning (it changes nothing);
# one larger than MAX_CLOCK_SKEW is not believed.
CLOCK_WARN_SKEW = 300
MAX_CLOCK_SKEW = 86400
# How far back of the send the history is read when a lost answer is looked up, and after a 409, how far back of the
# first attempt the operation holding the lock may have started.
LOST_ANSWER_LOOKBACK = 300
LOCK_HOLDER_LOOKBACK = 3600
# How far past now the operation history is read, so that an operation the service stamps ahead is not missed.
HISTORY_AHEAD = 86400
# List Subscription Operations pages at most (100 operations each on the service): a listing that goes on past
# this, or hands back a continuation token it gave before, is not the service's and is refused.
MAX_HISTORY_PAGES = 100
ROLE_OPERATIONS = {"reimage": "ReimageRoleInstance", "reboot": "RebootRoleInstance",
                   "rebuild": "RebuildRoleInstance"}


def _asm_xml():
    """The XML parsers, imported when a body is first read: a reimage with wait=false never needs them."""
    from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _asm_xml as asm_xml
    return asm_xml


def deployment_path(service, slot=None, deployment_name=None):
    base = "/services/hostedservices/%s" % quote(service, safe="")
    if deployment_name:
        return "%s/deployments/%s" % (base, quote(deployment_name, safe=""))
    return "%s/deploymentslots/%s" % (base, quote(slot, safe=""))


class ServiceManagementClient:
    def __init__(self, subscription_id, certificate, management_url, api_version="2014-10-01", timeout=60,
                 validate_certs=True, ca_path=None, retries=5, warn=None, sleep=time.sleep,
                 clock=time.monotonic, use_proxy=True, redirect_hosts=(), pool_size=POOL_SIZE, poll=None,
                 rate_limiter=None):
        if REQUESTS_IMPORT_ERROR is not None:
            raise InputError(
                "the Python library 'requests' is needed on the machine that runs this (%s); install it, for "
                "example with pip install -r requirements.txt from the collection" % REQUESTS_IMPORT_ERROR,
                code="MissingLibrary")
        self.subscription_id = subscription_id
        self.base_url = management_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retries = retries
        self.warn = warn or (lambda message: None)
        self.sleep = sleep
        self.clock = clock
        self.use_proxy = use_proxy
        # Redirects may lead to the endpoint's own host, or to these hosts and their subdomains (the cloud's
        # management host and its regional front ends): nowhere else is trusted with the management certificate.
        self.endpoint_host = host_of(self.base_url)
        self.redirect_hosts = tuple(h.lower().strip(".") for h in redirect_hosts)
        # How this client's waits poll; a roll gives each deployment's client its share of the rate ceiling.
        self.poll = poll or PollSchedule()
        # Shared by every client of one roll, so the whole roll stays under its request-rate ceiling.
        self.rate_limiter = rate_limiter
        # Seconds the service's clock is ahead of ours, from the Date header of its last answer (None: no answer yet).
        self.clock_offset = None
        self.transport = Transport(certificate, api_version, timeout, validate_certs, ca_path, retries, sleep, use_proxy,
                                   self.endpoint_host, self.redirect_hosts, pool_size, rate_limiter)

    @property
    def session(self):
        """The transport's requests Session (tests mount their own adapter on it)."""
        return self.transport.session

    def close(self):
        self.transport.close()

    def _url(self, path, query=None):
        url = "%s/%s%s" % (self.base_url, self.subscription_id, path)
        if query:
            url += "?" + urlencode(query)
        return url

    def request(self, method, path, query=None):
        """Send one logical request; returns a Response with a 2xx status or raises. Retries, redirects and bounds
        are the transport's."""
        response = self.transport.send(method, self._url(path, query), self._learn_service_clock)
        if response.status >= 300:
            raise self._error(response)
        return response

    def _learn_service_clock(self, response, url):
        """Keep how far the service's clock is from ours (the Date header of the endpoint's own answers), and warn
        once when it is far off. A Date without a time zone, or more than a day off, is not trusted."""
        if host_of(url) != self.endpoint_host:
            return
        try:
            date = email.utils.parsedate_to_datetime(response.headers.get("Date") or "")
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        if date.tzinfo is None:
            return
        offset = date.timestamp() - time.time()
        if abs(offset) > MAX_CLOCK_SKEW:
            self.warn("the service's answers are dated %s, %d seconds from the controller's clock; that date is not "
                      "used, and operation times are read on the controller's clock" % (
                          shown(response.headers.get("Date"), 40), offset))
            return
        first = self.clock_offset is None
        self.clock_offset = offset
        if first and abs(self.clock_offset) > CLOCK_WARN_SKEW:
            self.warn("the controller's clock is %d seconds %s of the service's (the Date of its answers); "
                      "operation times are read on the service's clock, so nothing is affected, but the controller's "
                      "clock wants fixing (NTP)" % (abs(self.clock_offset), "behind" if self.clock_offset > 0 else "ahead"))

    def service_now(self, local=None):
        """The service's time (epoch seconds) at the controller's ``local`` time (now by default): the controller's
        clock corrected by the Date header of the service's last answer."""
        return (time.time() if local is None else local) + (self.clock_offset or 0.0)

    @staticmethod
    def _error(response):
        code, message = _asm_xml().parse_error(response.body)
        if code is None:
            snippet = shown(response.body[:400].decode("utf-8", "replace"), 200) if response.body else "(empty body)"
            code, message = "HttpError%d" % response.status, "unexpected answer: %s" % snippet
        return ServiceManagementError(message or "", code=code, http_status=response.status,
                                      request_id=_checked_request_id(response.request_id))

    # -- reads ------------------------------------------------------------------
    @staticmethod
    def _parsed(parse, response):
        """``parse(response.body)``; a body that is not what the service sends is a BadResponse naming the answer."""
        try:
            return parse(response.body)
        except ServiceManagementError as err:
            err.http_status = err.http_status or response.status
            err.request_id = err.request_id or _checked_request_id(response.request_id)
            raise

    def list_cloud_services(self):
        return self._parsed(_asm_xml().parse_hosted_services, self.request("GET", "/services/hostedservices"))

    def get_cloud_service(self, service, embed_detail=False):
        query = {"embed-detail": "true"} if embed_detail else None
        return self._parsed(_asm_xml().parse_hosted_service,
                            self.request("GET", "/services/hostedservices/%s" % quote(service, safe=""), query))

    def get_deployment(self, service, slot=None, deployment_name=None):
        return self._parsed(_asm_xml().parse_deployment,
                            self.request("GET", deployment_path(service, slot, deployment_name)))

    def get_operation(self, request_id):
        operation = self._parsed(_asm_xml().parse_operation,
                                 self.request("GET", "/operations/%s" % quote(request_id, safe="")))
        operation["request_id"] = operation["request_id"] or request_id
        return operation

    def list_subscription_operations(self, start, end, object_id=None, result=None):
        """Every operation in [start, end] (UTC epoch seconds), following continuation tokens."""
        query = {"StartTime": _iso(start), "EndTime": _iso(end)}
        if object_id:
            query["ObjectIdFilter"] = object_id
        if result:
            query["OperationResultFilter"] = result
        operations = []
        tokens = set()
        for _page in range(MAX_HISTORY_PAGES):
            page, token = _asm_xml().parse_subscription_operations(self.request("GET", "/operations", query).body)
            operations.extend(page)
            if not token:
                return operations
            if token in tokens:
                raise ServiceManagementError("the service's operation list handed back a continuation token it had "
                                             "given before: the listing would never end", code="BadResponse")
            tokens.add(token)
            query["ContinuationToken"] = token
        raise ServiceManagementError("the service's operation list went on past %d pages: refused as unbounded"
                                     % MAX_HISTORY_PAGES, code="BadResponse")

    def operation_history(self, service, start, result=None):
        """The operations on ``service`` that List Subscription Operations shows since ``start`` (epoch seconds on
        the service's clock, see service_now), each with ``kind`` (reimage, reboot, rebuild, or None for any other
        operation), ``instance`` and ``deployment`` (lower case, "" when absent), ``started`` (epoch, 0 when absent)
        and its parameters with lower-case names. The one reading of the history: the lost-answer and lock-holder
        lookups and the rolling engine's resume and checks all use it."""
        object_id = "/%s/services/hostedservices/%s" % (self.subscription_id, service)
        # The window's end lies far ahead: an operation stamped a little ahead must not be hidden.
        operations = self.list_subscription_operations(start, self.service_now() + HISTORY_AHEAD, object_id=object_id,
                                                       result=result)
        kinds = {name.lower(): kind for kind, name in ROLE_OPERATIONS.items()}
        for op in operations:
            params = {k.lower(): v for k, v in (op.get("parameters") or {}).items() if k}
            op.update(kind=kinds.get((op.get("name") or "").lower()), parameters=params,
                      instance=(params.get("roleinstancename") or "").lower(),
                      deployment=(params.get("deploymentname") or "").lower(), started=op.get("started") or 0)
        return operations

    # -- waits --------------------------------------------------------------------
    def wait_for_operation(self, request_id, deadline, probe_first=False, on_poll=None, expected=None, heartbeat=None):
        """Poll Get Operation Status until the operation is no longer InProgress; raises on timeout. ``expected``:
        how long such an operation has taken so far; ``heartbeat``: what says the wait goes on (see
        _waiter.wait_until)."""
        if probe_first:
            operation = self.get_operation(request_id)
            if operation_ended(operation):
                return operation
        done, operation, _polls = wait_until(lambda: self.get_operation(request_id), operation_ended, deadline,
                                             self.sleep, on_poll, self.poll, expected, heartbeat)
        if not done:
            raise WaitTimeoutError("operation %s was still InProgress after %d seconds" % (
                request_id, int(deadline.seconds)), request_id=request_id, last_status=operation["status"])
        return operation

    def wait_for_instance_ready(self, service, instance, deadline, slot=None, deployment_name=None):
        """Poll Get Deployment until the instance reports ReadyRole; fail fast on states it will not leave."""
        def probe():
            deployment = self.get_deployment(service, slot, deployment_name)
            for inst in deployment["role_instances"]:
                if inst["instance_name"].lower() == instance.lower():
                    return inst
            raise ServiceManagementError("role instance %s is no longer in the deployment" % instance,
                                         code="ResourceNotFound")

        done, inst, _polls = wait_until(probe, lambda i: instance_settled(i["instance_status"]), deadline,
                                        self.sleep, None, self.poll)
        if done and inst["instance_status"] == READY:
            return inst
        if done:
            raise ServiceManagementError("role instance %s is %s and will not become ReadyRole by itself%s" % (
                instance, inst["instance_status"],
                (": " + inst["instance_state_details"]) if inst.get("instance_state_details") else ""),
                code="InstanceNotReady")
        raise WaitTimeoutError("role instance %s was still %s after %d seconds" % (
            instance, inst["instance_status"], int(deadline.seconds)), last_status=inst["instance_status"])

    # -- role instance operations ---------------------------------------------------
    def role_instance_operation(self, kind, service, instance, slot=None, deployment_name=None, deadline=None,
                                recheck=None, on_lock_wait=None):
        """POST Reimage/Reboot/Rebuild Role Instance and return its request id.

        Never sent twice for one call: a POST whose answer was lost is looked up with List Subscription Operations
        before anything is re-sent, and a 409 from another operation on the deployment is waited out (within
        ``deadline``) and then ``recheck(holder)`` is asked before sending again. It returns the request id of an
        operation to follow instead of sending (another client's ``kind`` of this same instance, say), or None to
        send, or raises to give up. The default asks whether the operation that held the lock was a ``kind`` of this
        same instance, started by someone else: that one is followed, not repeated. ``on_lock_wait`` (a
        _waiter.Heartbeat) says, while the lock is waited for, that it is.
        """
        path = "%s/roleinstances/%s" % (deployment_path(service, slot, deployment_name), quote(instance, safe=""))
        query = {"comp": kind}
        if kind == "rebuild":
            query["resources"] = "allLocalDrives"
        deadline = deadline or Deadline(0, clock=self.clock)
        first_attempt = time.time()
        where = _Where(self, service, slot, deployment_name, instance)
        recheck = recheck or (lambda holder: self._holder_if_same(kind, where, holder, first_attempt))
        conflicts = 0
        while True:
            sent_at = time.time()
            try:
                response = self.request("POST", path, query)
            except AmbiguousRequestError as err:
                adopted = self._find_started_operation(kind, where, sent_at)
                if not adopted:
                    # A slow service may still be processing the original: look once more before re-sending.
                    self.sleep(min(self.timeout, LOST_ANSWER_GRACE))
                    adopted = self._find_started_operation(kind, where, sent_at)
                if adopted:
                    self.warn("the answer to the %s request for %s was lost; the service shows it started as "
                              "operation %s, which is adopted instead of sending it again" % (kind, instance, adopted))
                    return adopted
                if deadline.expired():
                    raise AmbiguousRequestError(
                        "%s; the service does not list it and the wait budget is spent, so it was not re-sent"
                        % err.message) from None
                continue
            except AzureClassicError as err:
                if err.code != "ConflictError":
                    raise
                match = CONFLICT_HOLDER_RE.search(err.message or "")
                holder = match.group(1).lower() if match else None
                gave_up = ServiceManagementError(
                    "%s (gave up waiting for the deployment's lock after %d seconds)" % (
                        err.message, int(deadline.seconds)), code=err.code, http_status=err.http_status,
                    request_id=err.request_id, hint=err.hint)
                if deadline.expired():
                    raise gave_up from None
                if holder:
                    try:
                        self.wait_for_operation(holder, deadline, heartbeat=on_lock_wait)
                    except WaitTimeoutError:
                        raise gave_up from None  # never sent again unchecked
                else:
                    pause = min(backoff_delay(conflicts), max(deadline.remaining, 0))
                    if on_lock_wait is None:
                        self.sleep(pause)
                    else:
                        on_lock_wait.sleep(self.sleep, pause)
                conflicts += 1
                instead = recheck(holder)
                if instead:
                    return names.check_request_id(instead)
                continue
            return _service_request_id(kind, response)

    def _find_started_operation(self, kind, where, sent_at):
        """The request id of our operation if the service shows it started, else None. ``sent_at`` is the
        controller's time of the send, put on the service's clock before it is compared with the history."""
        try:
            known = self.clock_offset is not None
            operations = self.operation_history(where.service, self.service_now(sent_at) - LOST_ANSWER_LOOKBACK)
            if not known and abs(self.clock_offset or 0) > LOST_ANSWER_LOOKBACK - CLOCK_TOLERANCE:
                # That was the first answer this client had, and it moved the window: read it again.
                operations = self.operation_history(where.service, self.service_now(sent_at) - LOST_ANSWER_LOOKBACK)
            mine = same_operations(kind, where.deployment_name, where.instance, operations,
                                   self.service_now(sent_at) - CLOCK_TOLERANCE)
        except AmbiguousRequestError:
            raise
        except AzureClassicError as err:
            raise AmbiguousRequestError(
                "the answer to the %s request for %s was lost and the service's operation list could not be read "
                "(%s): the operation may have started; check it before retrying" % (kind, where.instance, err.message),
                code="AmbiguousRequest") from None
        return mine[-1]["request_id"] if mine else None

    def _holder_if_same(self, kind, where, holder, first_attempt):
        """After a 409: the holder's request id when the history shows it was a ``kind`` of this same instance
        (another client got there first; following it is what was asked for), else None."""
        if not holder:
            return None
        try:
            operations = self.operation_history(where.service,
                                                self.service_now(first_attempt) - LOCK_HOLDER_LOOKBACK)
            same = same_operations(kind, where.deployment_name, where.instance, operations, 0)
        except AzureClassicError:
            return None  # not known to be the same: the POST is sent again, as it would have been
        if any(op["request_id"] == holder for op in same):
            self.warn("operation %s, a %s of %s that another client started, held the deployment's lock; it is "
                      "followed instead of sending a second one" % (holder, kind, where.instance))
            return holder
        return None


class _Where:
    """The instance a role operation addresses; the deployment's name is read once, and only when a history entry
    must be matched to it (an instance name alone is not enough: both slots may have one of that name)."""

    def __init__(self, client, service, slot, deployment_name, instance):
        self.client = client
        self.service = service
        self.slot = slot
        self.instance = instance
        self._name = deployment_name

    def deployment_name(self):
        if self._name is None:
            self._name = self.client.get_deployment(self.service, self.slot)["name"]
        return self._name


def same_operations(kind, deployment_name, instance, operations, since):
    """The ``kind`` operations on ``instance`` of the deployment ``deployment_name()`` names (asked only when an
    entry names a deployment: both slots may hold an instance of that name) that started at or after ``since``
    (service time), oldest first. An entry that may be one of them but whose start time or id cannot be used makes
    the answer unclear: AmbiguousRequestError, so that nothing is sent again on a guess."""
    found = []
    for op in operations:
        if op["kind"] != kind or op["instance"] != instance.lower():
            continue
        if op["deployment"] and op["deployment"] != deployment_name().lower():
            continue
        if op["started"] and op["started"] < since:
            continue
        if not op["started"] or not op["request_id"]:
            raise AmbiguousRequestError(
                "the service's history shows a %s of %s whose %s cannot be used (%r): whether it is the one in "
                "question is unknown, so nothing is sent again; check the instance before retrying" % (
                    kind, instance, "start time" if not op["started"] else "id",
                    op.get("started_time") if not op["started"] else (op.get("operation_id") or "")[:80]),
                code="AmbiguousRequest")
        found.append(op)
    return sorted(found, key=lambda op: op["started"])


def _service_request_id(kind, response):
    """The x-ms-request-id of an accepted request, checked before it goes into a Get Operation Status URL. The
    operation started even when it is missing or malformed: AcceptedRequestError says so."""
    value = response.request_id
    if not value:
        raise AcceptedRequestError("the service accepted the %s request but sent no x-ms-request-id" % kind,
                                   code="MissingRequestId", http_status=response.status)
    checked = _checked_request_id(value)
    if checked is None:
        raw = shown(value, 80)
        raise AcceptedRequestError("the service accepted the %s request but its x-ms-request-id %s is not an "
                                   "operation id" % (kind, raw), code="BadRequestId", http_status=response.status,
                                   raw_request_id=raw)
    return checked


def _checked_request_id(value):
    """``value`` as an operation id, or None when it is not one (or missing)."""
    try:
        return names.check_request_id(value) if value else None
    except InputError:
        return None


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
