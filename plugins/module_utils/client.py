# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Service Management client: the one place that does HTTP, TLS, retries, redirects and errors."""

from __future__ import annotations

import http.client
import random
import re
import select
import ssl
import threading
import time
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import asm_xml
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.errors import (
    AmbiguousRequestError, ServiceManagementError, TransportError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils.waiter import Deadline, wait_until

CONFLICT_HOLDER_RE = re.compile(r"x-ms-requestid\s+([0-9a-fA-F]{32})")
RETRYABLE_STATUS = (500, 503)
REDIRECT_STATUS = (307, 308)
MAX_REDIRECTS = 5
BACKOFF_BASE = 1.0
BACKOFF_CAP = 20.0
LOST_ANSWER_GRACE = 5.0
ROLE_OPERATIONS = {"reimage": "ReimageRoleInstance", "reboot": "RebootRoleInstance",
                   "rebuild": "RebuildRoleInstance"}
# States a reimaged instance does not leave by itself; waiting for ReadyRole stops at them. StoppedVM is not
# one: an instance passes through it while it is reimaged.
NOT_RECOVERING = ("FailedStartingRole", "FailedStartingVM", "CyclingRole", "UnresponsiveRole", "StoppedDeallocated")


def backoff_delay(attempt, base=BACKOFF_BASE, cap=BACKOFF_CAP, rand=random.random):
    """Exponential backoff with jitter: half fixed, half random, so retries from many hosts spread out."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling / 2 + rand() * ceiling / 2


class Headers(dict):
    """Response headers, looked up without regard to case."""

    def __init__(self, pairs=()):
        super().__init__((name.lower(), value) for name, value in (pairs.items() if hasattr(pairs, "items") else pairs))

    def get(self, name, default=None):
        return super().get(name.lower(), default)

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __contains__(self, name):
        return super().__contains__(name.lower())


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers if isinstance(headers, Headers) else Headers(headers or {})
        self.body = body

    @property
    def request_id(self):
        return self.headers.get("x-ms-request-id")


class ExchangeFailed(Exception):
    """No HTTP answer came back. ``sent`` tells whether the service may have received the request; ``tls``
    marks a refused handshake, which retrying does not cure."""

    def __init__(self, cause, sent, tls=False):
        super().__init__(_root_cause(cause))
        self.sent = sent
        self.tls = tls


class KeepAliveTransport:
    """HTTPS on the standard library's http.client, with connections reused across requests and threads.

    Importing requests and urllib3 cost a module about 95 ms, enough to make a task slower than the same POST
    with ansible.builtin.uri (bench/overhead.py). This does what the client needs (client certificate via the
    SSL context, timeouts, keep-alive, telling a request never sent from an answer lost) with the standard
    library. Environment proxies and .netrc are deliberately not read.
    """

    def __init__(self, context, timeout, max_idle_per_host=8):
        self._context = context
        self._timeout = timeout
        self._max_idle = max_idle_per_host
        self._idle = {}
        self._lock = threading.Lock()

    def send(self, method, url, headers, body=None):
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ExchangeFailed(ValueError("not an https URL: %s" % url), sent=False)
        key = (parts.hostname, parts.port or 443)
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        conn = self._take(key)
        try:
            if conn.sock is None:
                conn.connect()
        except (OSError, http.client.HTTPException) as exc:  # ssl.SSLError is an OSError
            raise _failed(conn, exc, sent=False) from None
        try:
            conn.request(method, target, body=body, headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            raise _failed(conn, exc, sent=True) from None
        if answer.will_close:
            conn.close()
        else:
            self._give_back(key, conn)
        return Response(answer.status, Headers(answer.getheaders()), payload)

    def _take(self, key):
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()
                if _still_open(conn):
                    return conn
                conn.close()
        return http.client.HTTPSConnection(key[0], key[1], timeout=self._timeout, context=self._context)

    def _give_back(self, key, conn):
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self._max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self):
        with self._lock:
            pools, self._idle = self._idle, {}
        for idle in pools.values():
            for conn in idle:
                conn.close()


def _still_open(conn):
    """An idle keep-alive connection the server has not closed (a closed one reads as ready, with EOF)."""
    if conn.sock is None:
        return False
    try:
        return not select.select([conn.sock], [], [], 0)[0]
    except (OSError, ValueError):
        return False


def _failed(conn, exc, sent):
    """Close the connection and describe the failure; TLS errors other than an abrupt end are not retried."""
    conn.close()
    tls = isinstance(exc, ssl.SSLError) and not isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError))
    return ExchangeFailed(exc, sent=sent, tls=tls)


def deployment_path(service, slot=None, deployment_name=None):
    base = "/services/hostedservices/%s" % quote(service, safe="")
    if deployment_name:
        return "%s/deployments/%s" % (base, quote(deployment_name, safe=""))
    return "%s/deploymentslots/%s" % (base, quote(slot, safe=""))


class ServiceManagementClient:
    def __init__(self, subscription_id, certificate, management_url, api_version="2014-10-01", timeout=60,
                 validate_certs=True, ca_path=None, retries=5, warn=None, sleep=time.sleep,
                 clock=time.monotonic):
        self.subscription_id = subscription_id
        self.base_url = management_url.rstrip("/")
        self.api_version = api_version
        self.timeout = timeout
        self.retries = retries
        self.warn = warn or (lambda message: None)
        self.sleep = sleep
        self.clock = clock
        # Polling profile of the waits; the rolling role tightens it to keep its schedule close to the bound.
        self.poll_min_interval = 0.5
        self.poll_growth = 0.1
        # Trust comes from ca_path alone when it is given (REQUESTS_CA_BUNDLE and the like play no part),
        # otherwise from the system store.
        context = ssl.create_default_context(cafile=ca_path if validate_certs else None)
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        certificate.load_into(context)
        self.transport = KeepAliveTransport(context, timeout)
        self.headers = {"x-ms-version": api_version, "Accept": "application/xml",
                        "User-Agent": "azure_classic.cloud_services"}

    def close(self):
        self.transport.close()

    # -- transport ------------------------------------------------------------
    def _url(self, path, query=None):
        url = "%s/%s%s" % (self.base_url, self.subscription_id, path)
        if query:
            url += "?" + urlencode(query)
        return url

    def request(self, method, path, query=None):
        """Send one logical request; returns a Response with status < 400 or raises."""
        url = self._url(path, query)
        headers = dict(self.headers)
        body = None
        if method == "POST":
            headers.update({"Content-Length": "0", "Content-Type": "application/xml"})
            body = b""
        attempt = 0
        hops = 0
        while True:
            try:
                response = self.transport.send(method, url, headers, body)
            except ExchangeFailed as exc:
                if exc.tls:
                    raise TransportError(
                        "TLS with %s failed: %s (check ca_path and validate_certs, and that the management "
                        "certificate is valid)" % (urlsplit(url).netloc, exc)) from None
                if method != "GET" and exc.sent:
                    raise AmbiguousRequestError(
                        "the connection to %s failed after the %s request was sent (%s): the operation may "
                        "have started" % (urlsplit(url).netloc, method, exc)) from None
                if attempt >= self.retries:
                    raise TransportError("cannot reach %s after %d attempts: %s" % (
                        urlsplit(url).netloc, attempt + 1, exc)) from None
                self.sleep(backoff_delay(attempt))
                attempt += 1
                continue
            if response.status in REDIRECT_STATUS:
                location = response.headers.get("Location")
                hops += 1
                if not location or hops > MAX_REDIRECTS:
                    raise TransportError("too many redirects (or one without a Location) from %s" % url)
                if not location.lower().startswith("https://"):
                    raise TransportError("refusing a redirect from %s to a non-https URL %s" % (url, location))
                url = location
                continue
            if response.status in RETRYABLE_STATUS and attempt < self.retries:
                self.sleep(backoff_delay(attempt))
                attempt += 1
                continue
            if response.status >= 400:
                raise self._error(response)
            return response

    @staticmethod
    def _error(response):
        code, message = asm_xml.parse_error(response.body)
        if code is None:
            snippet = response.body[:200].decode("utf-8", "replace") if response.body else "(empty body)"
            code, message = "HttpError%d" % response.status, "unexpected answer: %s" % snippet
        return ServiceManagementError(message or "", code=code, http_status=response.status,
                                      request_id=response.request_id)

    # -- reads ------------------------------------------------------------------
    def list_cloud_services(self):
        return asm_xml.parse_hosted_services(self.request("GET", "/services/hostedservices").body)

    def get_cloud_service(self, service, embed_detail=False):
        query = {"embed-detail": "true"} if embed_detail else None
        return asm_xml.parse_hosted_service(
            self.request("GET", "/services/hostedservices/%s" % quote(service, safe=""), query).body)

    def get_deployment(self, service, slot=None, deployment_name=None):
        return asm_xml.parse_deployment(self.request("GET", deployment_path(service, slot, deployment_name)).body)

    def get_operation(self, request_id):
        operation = asm_xml.parse_operation(self.request("GET", "/operations/%s" % request_id).body)
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
        while True:
            page, token = asm_xml.parse_subscription_operations(self.request("GET", "/operations", query).body)
            operations.extend(page)
            if not token:
                return operations
            query["ContinuationToken"] = token

    # -- waits --------------------------------------------------------------------
    def wait_for_operation(self, request_id, deadline, probe_first=False, on_poll=None):
        """Poll Get Operation Status until the operation is no longer InProgress; raises on timeout."""
        if probe_first:
            operation = self.get_operation(request_id)
            if operation["status"] != "InProgress":
                return operation
        done, operation, _polls = wait_until(lambda: self.get_operation(request_id),
                                             lambda op: op["status"] != "InProgress", deadline, self.sleep, on_poll,
                                             self.poll_min_interval, self.poll_growth)
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

        done, inst, _polls = wait_until(
            probe, lambda i: i["instance_status"] in ("ReadyRole",) + NOT_RECOVERING, deadline,
            self.sleep, None, self.poll_min_interval, self.poll_growth)
        if done and inst["instance_status"] == "ReadyRole":
            return inst
        if done:
            raise ServiceManagementError("role instance %s is %s and will not become ReadyRole by itself%s" % (
                instance, inst["instance_status"],
                (": " + inst["instance_state_details"]) if inst.get("instance_state_details") else ""),
                code="InstanceNotReady")
        raise WaitTimeoutError("role instance %s was still %s after %d seconds" % (
            instance, inst["instance_status"], int(deadline.seconds)), last_status=inst["instance_status"])

    # -- role instance operations ---------------------------------------------------
    def role_instance_operation(self, kind, service, instance, slot=None, deployment_name=None, deadline=None):
        """POST Reimage/Reboot/Rebuild Role Instance and return its request id.

        A 409 from another operation on the deployment is waited out (within ``deadline``); a POST
        whose answer was lost is looked up with List Subscription Operations before anything is re-sent,
        so an instance is never reimaged twice by this client.
        """
        path = "%s/roleinstances/%s" % (deployment_path(service, slot, deployment_name), quote(instance, safe=""))
        query = {"comp": kind}
        if kind == "rebuild":
            query["resources"] = "allLocalDrives"
        deadline = deadline or Deadline(0, clock=self.clock)
        conflicts = 0
        while True:
            sent_at = time.time()
            try:
                response = self.request("POST", path, query)
            except AmbiguousRequestError as err:
                adopted = self._find_started_operation(kind, service, instance, sent_at)
                if not adopted:
                    # A slow service may still be processing the original: look once more before re-sending.
                    self.sleep(min(self.timeout, LOST_ANSWER_GRACE))
                    adopted = self._find_started_operation(kind, service, instance, sent_at)
                if adopted:
                    self.warn("the answer to the %s request for %s was lost; the service shows it started as "
                              "operation %s, which is adopted instead of sending it again" % (kind, instance, adopted))
                    return adopted
                if deadline.expired():
                    raise AmbiguousRequestError(
                        "%s; the service does not list it and the wait budget is spent, so it was not re-sent"
                        % err.message) from None
                continue
            except ServiceManagementError as err:
                if err.code != "ConflictError":
                    raise
                holder = CONFLICT_HOLDER_RE.search(err.message or "")
                if deadline.expired():
                    raise ServiceManagementError(
                        "%s (gave up waiting for the deployment's lock after %d seconds)" % (
                            err.message, int(deadline.seconds)), code=err.code, http_status=err.http_status,
                        request_id=err.request_id, hint=err.hint) from None
                if holder:
                    try:
                        self.wait_for_operation(holder.group(1).lower(), deadline)
                    except WaitTimeoutError:
                        continue  # loops back to the conflict branch, which reports the expired budget
                else:
                    self.sleep(min(backoff_delay(conflicts), max(deadline.remaining, 0)))
                conflicts += 1
                continue
            if not response.request_id:
                raise ServiceManagementError("the service accepted the %s request but sent no x-ms-request-id"
                                             % kind, code="MissingRequestId", http_status=response.status)
            return response.request_id.lower()

    def _find_started_operation(self, kind, service, instance, sent_at):
        """The request id of our operation if the service shows it started, else None."""
        object_id = "/%s/services/hostedservices/%s" % (self.subscription_id, service)
        try:
            operations = self.list_subscription_operations(sent_at - 300, time.time() + 300, object_id=object_id)
        except ServiceManagementError as err:
            raise AmbiguousRequestError(
                "the answer to the %s request for %s was lost and the service's operation list could not be "
                "read (%s): the operation may have started; check it before retrying" % (kind, instance, err.message),
                code="AmbiguousRequest") from None
        candidates = [
            op for op in operations
            if (op.get("name") or "").lower() == ROLE_OPERATIONS[kind].lower()
            and (op["parameters"].get("roleInstanceName") or "").lower() == instance.lower()
            and _epoch(op.get("started_time")) >= int(sent_at) - 1]
        return candidates[-1]["request_id"] if candidates else None


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(value):
    try:
        return time.mktime(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    except (TypeError, ValueError):
        return 0


def _root_cause(exc):
    seen = exc
    while getattr(seen, "__context__", None) is not None or getattr(seen, "__cause__", None) is not None:
        seen = seen.__cause__ or seen.__context__
    text = str(seen) or seen.__class__.__name__
    return text if len(text) < 300 else text[:300] + "..."
