"""Test helpers shared by the emulator, unit and end-to-end suites (not shipped)."""
import json
import os
import pathlib
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECORDINGS = pathlib.Path(os.environ.get("ASM_RECORDINGS") or ROOT.parent / "shared" / "reference" / "asm" / "recordings")
COLLECTIONS = ROOT / "tests" / "output" / "collections"


def ensure_collection_path():
    """Make the checkout importable as ansible_collections.azure_classic.cloud_services."""
    link = COLLECTIONS / "ansible_collections" / "azure_classic" / "cloud_services"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(ROOT, target_is_directory=True)
        except FileExistsError:
            pass
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return COLLECTIONS


def admin_headers(info):
    """What every request to the emulator's admin API carries: the token of its connection.json."""
    return {"Authorization": "Bearer %s" % info["admin_token"]}


class EmulatorHandle:
    """A running emulator plus helpers to drive its admin API and run ansible against it."""

    def __init__(self, info, server=None):
        self.info = info
        self.server = server
        self.admin = info["admin_url"]
        self.admin_headers = admin_headers(info)
        self.url = info["management_url"]
        self.subscription_id = info["subscription_id"]

    def _admin(self, method, path, payload=None):
        response = requests.request(method, "%s/%s" % (self.admin, path), json=payload, headers=self.admin_headers,
                                    verify=self.info["ca_path"], timeout=30)
        response.raise_for_status()
        return response.json()

    def reset(self):
        self._admin("DELETE", "faults")
        return self._admin("POST", "reset")

    def topology(self, spec):
        return self._admin("POST", "topology", spec)

    def fault(self, **spec):
        return self._admin("POST", "faults", spec)

    def group_defaults(self, indent=4):
        """The connection options as YAML for ``module_defaults: group/azure_classic.cloud_services.cloud_services``
        (lines indented by ``indent``), for plays that run without the AZURE_* environment."""
        pad = " " * indent
        return "".join("%s%s: \"%s\"\n" % (pad, name, self.info[key]) for name, key in (
            ("subscription_id", "subscription_id"), ("management_certificate", "certificate_path"),
            ("management_url", "management_url"), ("ca_path", "ca_path")))

    def timing(self, **values):
        return self._admin("POST", "timing", values)

    def clock(self, offset):
        """Move the service's clock ``offset`` seconds from the controller's (reset puts it back)."""
        return self._admin("POST", "clock", {"offset": offset})

    def events(self, kind=None):
        events = self._admin("GET", "events")
        return [e for e in events if kind is None or e["kind"] == kind]

    def requests_made(self, method=None, query_contains=None):
        return [e for e in self.events("request")
                if (method is None or e["method"] == method)
                and (query_contains is None or query_contains in (e["query"] or ""))]

    def accepted(self, comp="reimage"):
        """Accepted (202) role-instance operations of one kind, dropped answers included."""
        return [e for e in self.requests_made("POST", "comp=" + comp) if e["status"] == 202]

    def availability(self):
        return self._admin("GET", "availability")

    def env(self, **extra):
        """Environment for an ansible run: the collection on the path, connection through AZURE_* vars."""
        env = dict(os.environ)
        # A home of the run's own (state files, ~/.ansible/tmp): the user's is never touched, even by hand.
        home = pathlib.Path(self.info["ca_path"]).parent / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        env.update({
            "HOME": str(home),
            "ANSIBLE_COLLECTIONS_PATH": str(ensure_collection_path()),
            "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_RETRY_FILES_ENABLED": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id, "AZURE_CERT_PATH": self.info["certificate_path"],
            "AZURE_MANAGEMENT_URL": self.url, "AZURE_CA_PATH": self.info["ca_path"],
        })
        env.pop("AZURE_CERT_PASSWORD", None)
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env


class HealthEndpoint:
    """A health URL for the rolling role's gate: HTTPS on 127.0.0.1 with the emulator's server certificate (so its
    CA, ``ca_path``, verifies it), answering 200 on ``/`` and 404 elsewhere, or what ``answers`` says for a path: a
    status, or a list of statuses given in turn (the last one then for ever). With ``fail_after``, ``/`` answers 503
    from its ``fail_after + 1``-th GET on (a service that turns unhealthy). ``paths`` records what was asked,
    ``asked`` the same with the time.time() of each."""

    def __init__(self, emulator, fail_after=None):
        self.paths = []
        self.asked = []
        self.answers = {}
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(emulator.server.manifest["server_cert_path"], emulator.server.manifest["server_key_path"])
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # pylint: disable=invalid-name
                endpoint.paths.append(self.path)
                endpoint.asked.append((time.time(), self.path))
                answer = endpoint.answers.get(self.path, 200 if self.path == "/" else 404)
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if self.path == "/" and fail_after is not None and endpoint.paths.count("/") > fail_after:
                    answer = 503
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):  # pylint: disable=redefined-builtin
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def bin_path(name):
    candidate = pathlib.Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def run_adhoc(emu, module, args, env=None, extra=(), timeout=300, wrapper=()):
    """``ansible localhost -m MODULE -a ARGS`` with JSON output (run by ``wrapper``, a command prefix, if given);
    returns (rc, result dict, raw output)."""
    environment = emu.env(**(env or {}))
    cmd = [*wrapper, bin_path("ansible"), "localhost", "-m", "azure_classic.cloud_services." + module,
           "-a", json.dumps(args) if isinstance(args, dict) else args, *extra]
    proc = run_whole(cmd, environment, timeout)
    return proc.returncode, _parse_adhoc(proc.stdout), proc.stdout + proc.stderr


def _children():
    """{parent pid: [child pids]} of every process, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def kill_tree(pid):
    """Kill ``pid`` and every process descending from it. Not only its process group: ansible-core's workers call
    setsid(), so a killed ansible-playbook's worker would otherwise go on rolling, sending to the emulator during
    later tests."""
    children, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    for target in found:
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_whole(cmd, env, timeout):
    """Run ``cmd`` in a session of its own; past ``timeout`` every process of it is killed (ansible's forked workers
    too, which would otherwise go on sending to the emulator during later tests) and TimeoutExpired carries what
    it printed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        stdout, stderr = proc.communicate()
        raise subprocess.TimeoutExpired(cmd, timeout, output=(stdout or "")[-20000:], stderr=stderr) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _parse_adhoc(stdout):
    """The JSON object ansible prints after 'localhost | STATUS =>'."""
    marker = stdout.find("=> {")
    if marker < 0:
        return {}
    text = stdout[marker + 3:]
    depth = 0
    for index, char in enumerate(text):
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            try:
                return json.loads(text[:index + 1])
            except ValueError:
                return {}
    return {}


def run_playbook(emu, playbook_text, tmp_path, env=None, extra=(), timeout=600, inventory=None):
    """Write and run a playbook; returns the CompletedProcess (stdout+stderr in .output)."""
    playbook = pathlib.Path(tmp_path) / ("play_%d.yml" % int(time.time() * 1000))
    playbook.write_text(playbook_text)
    cmd = [bin_path("ansible-playbook"), str(playbook), *extra]
    if inventory:
        cmd += ["-i", str(inventory)]
    proc = run_whole(cmd, emu.env(**(env or {})), timeout)
    proc.output = proc.stdout + proc.stderr
    return proc
