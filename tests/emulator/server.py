"""HTTPS front end of the emulator: mutual TLS, routing and the admin API; faults.py injects the faults."""
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import pki, wire
from .faults import NO_FAULT, Faults
from .state import Emulator, TopologyError

VERSION_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
ROLE_OPERATIONS = {"reimage": "2010-10-28", "reboot": "2010-10-28", "rebuild": "2013-06-01"}
READ_MIN_VERSION = "2009-10-01"
LIST_OPERATIONS_MIN_VERSION = "2011-02-25"
REGION = "emulator1"
NO_DEPLOYMENTS = "No deployments were found."


class ApiError(Exception):
    def __init__(self, status, code, message=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _not_found(message):
    return ApiError(404, "ResourceNotFound", message)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive client's delayed ACK
    # held every answer back about 40 ms, a latency the real front end does not have.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the event log is the record."""

    # every verb goes through one dispatcher
    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    @property
    def emulator(self):
        return self.server.emulator

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self):
        """A body sent without Content-Length (Node.js clients, for one): chunks until the empty one."""
        body = []
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                break
            body.append(self.rfile.read(size))
            self.rfile.readline(1024)  # the CRLF after each chunk
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailer fields, then the blank line that ends the body
        return b"".join(body)

    def reply(self, status, body=b"", headers=None, content_type="application/xml; charset=utf-8"):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response_only(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _dispatch(self):
        try:
            body = self._read_body()
        except ValueError:  # a chunk size or Content-Length that is not a number: the framing is lost
            self.close_connection = True
            return self.reply(400, json.dumps({"error": "unreadable request body"}), content_type="application/json")
        split = urlsplit(self.path)
        if split.path.startswith("/_emulator/") or split.path == "/_emulator":
            return self._admin(split, body)
        return self._management(split)

    # -- admin API ----------------------------------------------------------------
    def _admin_authorised(self):
        """Only whoever can read connection.json (0600) drives the admin API: any local user reaches the port."""
        sent = (self.headers.get("Authorization") or "").encode("utf-8", "surrogateescape")
        return hmac.compare_digest(sent, ("Bearer " + self.server.admin_token).encode("ascii"))

    def _admin(self, split, body):
        emu = self.emulator
        if not self._admin_authorised():
            return self.reply(401, json.dumps({"error": "the admin API needs 'Authorization: Bearer <admin_token>' "
                                                        "(admin_token is in connection.json)"}),
                              headers={"WWW-Authenticate": "Bearer"}, content_type="application/json")
        try:
            payload = json.loads(body.decode("utf-8")) if body else {}
            route = (self.command, split.path.rstrip("/"))
            if route == ("POST", "/_emulator/topology"):
                emu.load_topology(payload)
                result = {"subscription_id": emu.subscription_id}
            elif route == ("POST", "/_emulator/faults"):
                result = {"faults": self.server.faults.add(payload)}
            elif route == ("DELETE", "/_emulator/faults"):
                self.server.faults.clear()
                result = {"faults": 0}
            elif route == ("POST", "/_emulator/timing"):
                emu.set_timing(payload.get("operation_seconds"), payload.get("recovery_seconds"),
                               payload.get("list_page_size"))
                result = {"operation_seconds": emu.operation_seconds, "recovery_seconds": emu.recovery_seconds}
            elif route == ("POST", "/_emulator/clock"):
                emu.set_clock_offset(payload.get("offset", 0))
                result = {"offset": emu.clock_offset}
            elif route == ("POST", "/_emulator/reset"):
                emu.reset()
                result = {"reset": True}
            elif route == ("GET", "/_emulator/events"):
                emu.advance()
                with emu.lock:
                    # Stable sort: a request is stamped when it arrived, its effects a moment later.
                    result = sorted(emu.events, key=lambda e: e["time"])
            elif route == ("GET", "/_emulator/availability"):
                emu.advance()
                result = emu.availability_report()
            elif route == ("GET", "/_emulator/state"):
                emu.advance()
                result = {"subscription_id": emu.subscription_id, "operation_seconds": emu.operation_seconds,
                          "recovery_seconds": emu.recovery_seconds}
            else:
                return self.reply(404, json.dumps({"error": "no such admin route"}), content_type="application/json")
        except (ValueError, TypeError, KeyError, TopologyError) as exc:
            return self.reply(400, json.dumps({"error": str(exc)}), content_type="application/json")
        return self.reply(200, json.dumps(result), content_type="application/json")

    # -- management API -------------------------------------------------------------
    def _management(self, split):
        emu = self.emulator
        emu.advance()
        target = split.path + ("?" + split.query if split.query else "")
        fault = self.server.faults.match(self.command, target) if self.server.injects_faults else NO_FAULT
        request_id = wire.new_request_id()
        now = emu.now()
        headers = {"Cache-Control": "no-cache", "Date": wire.http_date(now), "Server": wire.SERVER_HEADER,
                   "x-ms-servedbyregion": REGION, "x-ms-request-id": request_id,
                   "Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
        answer = fault.answer_instead(split.path, target, now, request_id, headers)
        if answer is None:
            try:
                status, body, extra = self._route(split, request_id, fault)
            except ApiError as err:
                status, body, extra = err.status, wire.error(err.code, err.message), {}
            headers.update(extra)
            answer = status, body, headers, request_id
        status, body, headers, logged_request_id = answer
        emu.log_request(now, self.command, split.path, split.query, status, logged_request_id, dropped=fault.dropped,
                        client="%s:%s" % tuple(self.client_address[:2]))
        fault.deliver(self, status, body, headers)

    def _check_auth(self, subscription):
        der = self.connection.getpeercert(binary_form=True)
        thumb = hashlib.sha1(der).hexdigest().upper() if der else None
        if subscription.lower() != self.emulator.subscription_id or thumb not in self.server.registered:
            raise ApiError(403, "ForbiddenError")
        return thumb

    def _check_version(self, minimum):
        version = self.headers.get("x-ms-version")
        match = VERSION_RE.match(version or "")
        if not match or version < minimum:
            raise ApiError(400, "MissingOrIncorrectVersionHeader")

    def _route(self, split, request_id, fault):
        emu = self.emulator
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        query = {k.lower(): v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if not parts or not parts[0]:
            raise _not_found("The resource was not found.")
        thumb = self._check_auth(parts[0])
        rest = parts[1:]
        with emu.lock:
            if self.command == "GET":
                if rest == ["operations"]:
                    self._check_version(LIST_OPERATIONS_MIN_VERSION)
                    return self._list_operations(query)
                self._check_version(READ_MIN_VERSION)
                if len(rest) == 2 and rest[0] == "operations":
                    return self._operation_status(rest[1])
                if rest[:2] == ["services", "hostedservices"]:
                    return self._read_service(rest[2:], query)
            elif self.command == "POST":
                if rest[:2] == ["services", "hostedservices"] and len(rest) == 7 and rest[5] == "roleinstances":
                    return self._role_operation(rest[2:], query, request_id, thumb, fault)
                if rest[:2] == ["services", "hostedservices"] and len(rest) >= 3:
                    self._check_version(READ_MIN_VERSION)
                    raise ApiError(400, "BadRequest", "The requested operation is not supported.")
            raise _not_found("The resource was not found.")

    def _find_deployment(self, svc_name, addressing, key):
        """The deployment a path addresses. Whatever is missing (the slot's deployment, the named deployment, or the
        cloud service itself) the answer is the recorded "No deployments were found." (the last case is assumed)."""
        if addressing == "deploymentslots" and key.lower() not in ("production", "staging"):
            raise ApiError(400, "BadRequest", "The deployment slot name '%s' is invalid." % key)
        if addressing not in ("deploymentslots", "deployments"):
            raise _not_found("The resource was not found.")
        svc = self.emulator.service(svc_name)
        dep = None
        if svc is not None:
            find = self.emulator.deployment_by_slot if addressing == "deploymentslots" else self.emulator.deployment_by_name
            dep = find(svc, key)
        if dep is None:
            raise _not_found(NO_DEPLOYMENTS)
        return dep

    def _read_service(self, rest, query):
        emu = self.emulator
        base_url = "https://%s" % (self.headers.get("Host") or "management.core.windows.net")
        if not rest:
            services = sorted(emu.services.values(), key=lambda s: s["name"].lower())
            return 200, wire.hosted_services(base_url, emu.subscription_id, services), {}
        if len(rest) == 1:
            svc = emu.service(rest[0])
            if svc is None:
                raise _not_found("The hosted service does not exist.")
            deployments = None
            if query.get("embed-detail", "false").lower() == "true":
                deployments = [emu.deployment_view(d) for d in svc["deployments"].values()]
            return 200, wire.hosted_service(base_url, emu.subscription_id, svc, deployments), {}
        if len(rest) == 3:
            dep = self._find_deployment(rest[0], rest[1], rest[2])
            return 200, wire.deployment(*emu.deployment_view(dep)), {}
        raise _not_found("The resource was not found.")

    def _role_operation(self, rest, query, request_id, thumb, fault):
        emu = self.emulator
        comp = query.get("comp", "").lower()
        if comp not in ROLE_OPERATIONS:
            self._check_version(READ_MIN_VERSION)
            raise ApiError(400, "MissingOrInvalidRequiredQueryParameter",
                           "The required query parameter 'comp' is missing or invalid.")
        self._check_version(ROLE_OPERATIONS[comp])
        if comp == "rebuild" and query.get("resources", "").lower() != "alllocaldrives":
            raise ApiError(400, "MissingOrInvalidRequiredQueryParameter",
                           "The required query parameter 'resources' is missing or invalid.")
        dep = self._find_deployment(rest[0], rest[1], rest[2])
        inst = emu.instance(dep, rest[4])
        if inst is None:
            raise _not_found("Role instance name is not valid.")
        if dep["lock"] is not None:
            raise ApiError(409, "ConflictError", wire.conflict_message(dep["lock"]))
        emu.start_role_operation(comp, dep, inst, request_id, thumb, self.client_address[0],
                                 **fault.operation_outcome())
        return 202, b"", {}

    def _operation_status(self, raw_id):
        op = self.emulator.operations.get(raw_id.lower().replace("-", ""))
        if op is None:
            raise _not_found("The operation request ID was not found.")
        return 200, wire.operation(op["request_id"], op["status"], op["http_status"], op["error"]), {}

    def _list_operations(self, query):
        def parse_time(name, required=True):
            value = query.get(name.lower())
            if not value:
                if required:
                    raise ApiError(400, "MissingOrInvalidRequiredQueryParameter",
                                   "The required query parameter '%s' is missing or invalid." % name)
                return None
            for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S.%fZ"):
                try:
                    return time.mktime(time.strptime(value[:26] if "." in value else value, fmt)) - time.timezone
                except ValueError:
                    continue
            raise ApiError(400, "MissingOrInvalidRequiredQueryParameter",
                           "The required query parameter '%s' is missing or invalid." % name)

        start, end = parse_time("StartTime"), parse_time("EndTime")
        token = query.get("continuationtoken")
        if token and not token.isdigit():
            raise ApiError(400, "BadRequest", "The continuation token is invalid.")
        ops, next_token = self.emulator.list_operations(
            start, end + 0.999, query.get("objectidfilter"), query.get("operationresultfilter"), token)
        return 200, wire.subscription_operations(ops, next_token), {}


class TLSServer(ThreadingHTTPServer):
    """Threaded HTTPS server; the TLS handshake runs in the request's thread, not in accept()."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address, context, emulator, registered, faults, injects_faults, admin_token):
        self.ssl_context = context
        self.admin_token = admin_token
        self.emulator = emulator
        self.registered = registered
        self.faults = faults
        self.injects_faults = injects_faults
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass


def _server_context(manifest):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(manifest["server_cert_path"], manifest["server_key_path"])
    # Ask for a client certificate without requiring one, as the real service does; authorisation
    # (403 ForbiddenError) is decided per request from the certificate's thumbprint.
    context.verify_mode = ssl.CERT_OPTIONAL
    for path in manifest["trusted_client_certificates"]:
        context.load_verify_locations(cafile=path)
    return context


class EmulatorServer:
    """Owns the state, the armed faults, the main listener, the redirect target listener and the ticker thread."""

    def __init__(self, workdir, port=0, topology=None, operation_seconds=2.0, recovery_seconds=2.0,
                 host="127.0.0.1"):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.emulator = Emulator(topology, operation_seconds, recovery_seconds)
        self.manifest = pki.ensure_pki(self.workdir, self.emulator.subscription_id)
        context = _server_context(self.manifest)
        registered = set(self.manifest["registered_thumbprints"])
        self.faults = Faults(self.emulator)
        # A new secret per start, handed out only through connection.json.
        self.admin_token = secrets.token_urlsafe(32)
        self.httpd = TLSServer((host, port), context, self.emulator, registered, self.faults, True, self.admin_token)
        # The redirect target shares the armed faults (its admin API arms them too) but never injects them.
        self.redirect_httpd = TLSServer((host, 0), context, self.emulator, registered, self.faults, False,
                                        self.admin_token)
        self.faults.redirect_port = self.redirect_httpd.server_address[1]
        self.port = self.httpd.server_address[1]
        self.management_url = "https://127.0.0.1:%d" % self.port
        self._stop = threading.Event()
        self._threads = []

    def connection_info(self):
        m = self.manifest
        return {
            "management_url": self.management_url, "subscription_id": self.emulator.subscription_id,
            "ca_path": m["ca_path"], "certificate_path": m["certificate_path"], "pfx_path": m["pfx_path"],
            "pfx_password": m["pfx_password"], "publish_settings_path": m["publish_settings_path"],
            "unregistered_certificate_path": m["unregistered_certificate_path"],
            "admin_url": self.management_url + "/_emulator", "admin_token": self.admin_token,
        }

    def _tick(self):
        while not self._stop.wait(0.05):
            self.emulator.advance()

    def start(self):
        pki.rewrite_publish_settings_url(self.manifest, self.management_url)
        for target in (self.httpd.serve_forever, self.redirect_httpd.serve_forever, self._tick):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        info = self.connection_info()
        path = os.path.join(self.workdir, "connection.json")
        tmp = path + ".tmp"
        # It holds the PFX password and the admin token: readable by its owner only, from the moment it exists.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(info, handle, indent=2)
        os.replace(tmp, path)
        return info

    def stop(self):
        self._stop.set()
        for httpd in (self.httpd, self.redirect_httpd):
            httpd.shutdown()
            httpd.server_close()
