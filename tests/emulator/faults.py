"""Fault injection: the faults armed through the admin API, the requests they hit and what they do to them.

The server asks ``Faults.match`` once per management request and gets an ``Injection`` (``NO_FAULT`` when no
fault hits it). The injection may answer in the service's stead, decides how a role operation the request starts
ends, and delivers the answer: late, or not at all. Faults read the service state (state.py) only for the text of
an injected 409; the service state knows nothing of faults.
"""
import re
import socket
import threading
import time
from urllib.parse import unquote

from . import wire


class Fault:
    """One armed fault: the admin API's payload, validated, and how many requests it has seen and acted on."""
    ACTIONS = ("status", "redirect", "drop", "delay", "fail_operation", "stuck")
    STATUS_OPTIONS = {"code", "message", "conflict_text"}

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        action = spec.get("action")
        kinds = [k for k in (action if isinstance(action, dict) else ()) if k in self.ACTIONS]
        if len(kinds) != 1:
            raise ValueError("action must be one of %s" % ", ".join(self.ACTIONS))
        allowed = {kinds[0]} | (self.STATUS_OPTIONS if kinds[0] == "status" else set())
        if set(action) - allowed:
            raise ValueError("unknown keys in a %s action: %s" % (kinds[0], ", ".join(sorted(set(action) - allowed))))
        if "conflict_text" in action and str(action["conflict_text"]) not in ("2014", "2015"):
            raise ValueError("conflict_text must be 2015 (names the operation holding the lock) or 2014")
        if "drop" in action and action["drop"] not in ("before", "after"):
            raise ValueError("drop must be 'before' or 'after'")
        self.method = (spec.get("method") or "*").upper()
        try:
            self.pattern = re.compile(spec.get("path") or ".*")
        except re.error as exc:
            raise ValueError("path is not a regular expression: %s" % exc) from None
        self.skip = int(spec.get("skip", 0))
        self.times = int(spec.get("times", 1))
        self.action = action
        self.seen = 0
        self.acted = 0
        self.spec = spec

    def match(self, method, target):
        """Whether this fault acts on the request; counts it (the first `skip` hits pass, then `times` act)."""
        if self.acted >= self.times or (self.method != "*" and self.method != method):
            return False
        if not self.pattern.search(target):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.acted += 1
        return True


class Faults:
    """The armed faults, in the order they were added. Both listeners' admin APIs arm the same ones; only the main
    listener asks them to match, since the redirect target must serve what a redirect sends it."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.redirect_port = None  # the second listener, where an injected redirect sends the client
        self.armed = []
        self._lock = threading.Lock()

    def add(self, spec):
        """Arm a fault from the admin API's payload (ValueError when it is invalid); returns how many are armed."""
        fault = Fault(spec)
        with self._lock:
            self.armed.append(fault)
            return len(self.armed)

    def clear(self):
        with self._lock:
            self.armed = []

    def match(self, method, target):
        """The injection for one request (target: path and query): the first armed fault that acts on it, if any."""
        with self._lock:
            for fault in self.armed:
                if fault.match(method, target):
                    return Injection(self, fault.action)
        return NO_FAULT


class Injection:
    """What the fault that hit one request does to it. A fault has exactly one action, so at most one of these
    methods does anything."""

    def __init__(self, faults, action):
        self.faults = faults
        self.action = action

    @property
    def dropped(self):
        """'before' or 'after' (processing the request) when the connection is dropped, as the event log says."""
        return self.action.get("drop")

    def answer_instead(self, path, target, now, request_id, headers):
        """(status, body, headers, request id to log) of an answer given in the service's stead, status None for
        a connection dropped before processing; None when the service is to process the request."""
        action = self.action
        if self.dropped == "before":
            return None, b"", {}, None
        if "redirect" in action:
            location = "https://127.0.0.1:%d%s" % (self.faults.redirect_port, target)
            # The recorded 307s carry no Cache-Control and no request id.
            return 307, wire.REDIRECT_BODY, {
                "Date": wire.http_date(now), "Location": location, "Server": "Microsoft-HTTPAPI/2.0"}, None
        if "status" in action:
            status = int(action["status"])
            code = action.get("code") or wire.CODE_FOR_STATUS.get(status, "InternalError")
            message = action.get("message")
            if code == "ConflictError" and not message:
                message = self._conflict_message(path, now)
            return status, wire.error(code, message), headers, request_id
        return None

    def operation_outcome(self):
        """How a role operation this request starts ends: keyword arguments of Emulator.start_role_operation."""
        fail = self.action.get("fail_operation")
        return {"fail": (fail.get("code", "InternalError"), fail.get("message", "")) if fail else None,
                "stuck": bool(self.action.get("stuck"))}

    def deliver(self, handler, status, body, headers):
        """Send the answer through the request's handler, after the fault's delay, or drop the connection."""
        if "delay" in self.action:
            time.sleep(float(self.action["delay"]))  # a slow answer: the request was processed, the reply is late
        if self.dropped:
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        handler.reply(status, body, headers)

    def _conflict_message(self, path, now):
        """The text of an injected 409: by default the recorded one, naming an operation a client can poll (the
        deployment's real lock holder if it has one, else another client's operation made up for the purpose)."""
        if str(self.action.get("conflict_text", "2015")) == "2014":
            return wire.CONFLICT_2014
        emu = self.faults.emulator
        with emu.lock:
            dep = _deployment_for_path(emu, path)
            holder = dep["lock"] if dep is not None and dep["lock"] else None
            if holder is None:
                holder = wire.new_request_id()
                emu.foreign_operation(holder, now)
        return wire.conflict_message(holder)


NO_FAULT = Injection(None, {})


def _deployment_for_path(emu, path):
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) < 6 or parts[1:3] != ["services", "hostedservices"]:
        return None
    svc = emu.service(parts[3])
    if svc is None:
        return None
    if parts[4].lower() == "deploymentslots":
        return emu.deployment_by_slot(svc, parts[5])
    if parts[4].lower() == "deployments":
        return emu.deployment_by_name(svc, parts[5])
    return None
