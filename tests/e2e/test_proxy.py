"""Proxies: a CONNECT proxy started here sees the traffic of a module, the role and the inventory plugin when
HTTPS_PROXY names it, and none when NO_PROXY or use_proxy says to go direct; a proxy that refuses is a clear error."""
import json
import socket
import subprocess
import threading

import pytest
import yaml

from tests.helpers import bin_path, run_adhoc, run_playbook
from tests.hostile_server import read_request

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy")
INFO = {"cloud_service": "contoso-web", "deployment_slot": "production"}
REIMAGE = dict(INFO, role_instance="WebRole1_IN_0", wait=False)


class ConnectProxy:
    """A CONNECT proxy on 127.0.0.1 in a thread of this process; it records every CONNECT it is asked for.

    With ``refuse`` (a status line such as "403 Forbidden") it answers every CONNECT with it and relays nothing.
    """

    def __init__(self, refuse=None):
        self.refuse = refuse
        self.connects = []
        self.authorizations = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, credentials=""):
        return "http://%s127.0.0.1:%d" % (credentials + "@" if credentials else "", self.port)

    def close(self):
        self._closed = True
        self._listener.close()

    def _accept(self):
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        with client:
            request = read_request(client)
            if request is None:
                return
            method, target = request.method, request.target
            with self._lock:
                self.connects.append(target if method == "CONNECT" else "%s %s" % (method, target))
                self.authorizations.append(request.headers.get("Proxy-Authorization", ""))
            if method != "CONNECT" or self.refuse:
                client.sendall(("HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                % (self.refuse or "405 Method Not Allowed")).encode())
                return
            host, port = target.rsplit(":", 1)
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.settimeout(None)
                relay = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                relay.start()
                _pipe(client, upstream)
                relay.join(30)


def _pipe(source, sink):
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (sink, source):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def proxy():
    server = ConnectProxy()
    yield server
    server.close()


def proxy_env(url, **extra):
    env = {name: None for name in PROXY_VARIABLES}
    env["HTTPS_PROXY"] = url
    env.update(extra)
    return env


def emulator_target(emulator):
    return emulator.url[len("https://"):]


def role_instances_config(tmp_path, **options):
    path = tmp_path / "proxy.role_instances.yml"
    path.write_text(yaml.safe_dump(dict({"plugin": "azure_classic.cloud_services.role_instances"}, **options)))
    return path


def run_inventory(emulator, path, env):
    return subprocess.run([bin_path("ansible-inventory"), "-i", str(path), "--list"], env=emulator.env(**env),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)


ROLL = """
- hosts: all
  gather_facts: false
  roles:
    - role: azure_classic.cloud_services.rolling_reimage
      vars: %s
"""


def roll_inventory(tmp_path):
    names = ("WebRole1_IN_0", "WorkerRole1_IN_0")
    hosts = {"contoso-web.production." + name: {
        "cloud_service": "contoso-web", "deployment_slot": "production", "role_instance": name} for name in names}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "vars": {"ansible_connection": "local"}}}))
    return path


def roll(emulator, tmp_path, env, **role_vars):
    role_vars.setdefault("rolling_reimage_state_path", str(tmp_path / "roll.json"))
    return run_playbook(emulator, ROLL % json.dumps(role_vars), tmp_path, env=env, inventory=roll_inventory(tmp_path))


# -- through the proxy ----------------------------------------------------------------------------------------

def test_a_module_goes_through_the_proxy_with_its_credentials_kept_out_of_sight(emulator, proxy):
    rc, result, out = run_adhoc(emulator, "role_instance_reimage", REIMAGE,
                                env=proxy_env(proxy.url("agent:s3cret-pw")), extra=("-vvv",))
    assert rc == 0, out
    assert proxy.connects == [emulator_target(emulator)]
    assert proxy.authorizations == ["Basic YWdlbnQ6czNjcmV0LXB3"], "the proxy's credentials are sent to the proxy"
    assert len(emulator.accepted()) == 1 and result["request_id"] == emulator.accepted()[0]["request_id"]
    assert "s3cret" not in out


def test_a_redirect_through_the_proxy_reaches_the_second_listener(emulator, proxy):
    emulator.fault(method="GET", path="deploymentslots/production$", times=1, action={"redirect": True})
    rc, result, out = run_adhoc(emulator, "deployment_info", INFO, env=proxy_env(proxy.url()))
    assert rc == 0 and result["deployment"]["name"] == "contoso-web-prod", out
    second = "127.0.0.1:%d" % emulator.server.redirect_httpd.server_address[1]
    assert proxy.connects == [emulator_target(emulator), second]


def test_the_rolling_role_goes_through_the_proxy(emulator, proxy, tmp_path):
    proc = roll(emulator, tmp_path, proxy_env(proxy.url()))
    assert proc.returncode == 0, proc.output
    assert proxy.connects and set(proxy.connects) == {emulator_target(emulator)}
    assert len(emulator.accepted()) == 2


def test_the_inventory_plugin_goes_through_the_proxy(emulator, proxy, tmp_path):
    proc = run_inventory(emulator, role_instances_config(tmp_path), proxy_env(proxy.url()))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "contoso-web.production.WebRole1_IN_0" in proc.stdout
    assert proxy.connects and set(proxy.connects) == {emulator_target(emulator)}


# -- around the proxy -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("env,args", [
    ({"NO_PROXY": "127.0.0.1"}, {}),
    ({"no_proxy": "localhost,127.0.0.0/8"}, {}),
    ({}, {"use_proxy": False}),
    ({"AZURE_USE_PROXY": "false"}, {}),
], ids=["NO_PROXY", "no_proxy-cidr", "use_proxy-false", "AZURE_USE_PROXY-false"])
def test_a_module_bypasses_the_proxy_when_told(emulator, proxy, env, args):
    rc, result, out = run_adhoc(emulator, "deployment_info", dict(INFO, **args), env=proxy_env(proxy.url(), **env))
    assert rc == 0 and result["deployment"]["name"] == "contoso-web-prod", out
    assert proxy.connects == []
    assert len(emulator.requests_made("GET")) == 1


def test_the_role_and_the_inventory_bypass_the_proxy_when_told(emulator, proxy, tmp_path):
    proc = roll(emulator, tmp_path, proxy_env(proxy.url()), rolling_reimage_connection={"use_proxy": False})
    assert proc.returncode == 0, proc.output
    assert len(emulator.accepted()) == 2
    inventory = run_inventory(emulator, role_instances_config(tmp_path, use_proxy=False), proxy_env(proxy.url()))
    assert inventory.returncode == 0 and "contoso-web.production.WebRole1_IN_0" in inventory.stdout, inventory.stderr
    inventory = run_inventory(emulator, role_instances_config(tmp_path), proxy_env(proxy.url(), NO_PROXY="127.0.0.1"))
    assert inventory.returncode == 0 and "contoso-web.production.WebRole1_IN_0" in inventory.stdout, inventory.stderr
    assert proxy.connects == []


# -- a proxy that says no ------------------------------------------------------------------------------------------

def test_a_proxy_refusing_connect_is_a_clear_error_and_nothing_is_sent(emulator):
    refusing = ConnectProxy(refuse="403 Forbidden")
    try:
        rc, result, out = run_adhoc(emulator, "role_instance_reimage", REIMAGE,
                                    env=proxy_env(refusing.url("agent:s3cret-pw")), extra=("-vvv",))
    finally:
        refusing.close()
    assert rc != 0
    assert "the proxy http://127.0.0.1:%d refused to connect to %s" % (refusing.port, emulator_target(emulator)) \
        in result["msg"], out
    assert "403 Forbidden" in result["msg"] and result["error"]["code"] is None
    assert "s3cret" not in out and "Traceback" not in out
    assert refusing.connects == [emulator_target(emulator)], "a refusal is not retried"
    assert emulator.requests_made() == []


def test_an_unreachable_proxy_is_retried_then_named(emulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rc, result, out = run_adhoc(emulator, "deployment_info", dict(INFO, retries=1),
                                env=proxy_env("http://agent:s3cret-pw@127.0.0.1:%d" % port))
    assert rc != 0
    assert "cannot reach %s through the proxy http://127.0.0.1:%d after 2 attempts" % (
        emulator_target(emulator), port) in result["msg"], out
    assert "s3cret" not in out
    assert emulator.requests_made() == []
